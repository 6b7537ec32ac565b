#!/usr/bin/env python
"""Pre-resize a dataset's videos so their short side is 320 pixels (never upscaled), keeping the
folder layout, file names and frame rate, so that split files stay valid and decoding during
training is several times faster. Uses the `ffmpeg` program if it is on PATH, else PyAV. Runs in
a process pool; videos already in the output are skipped; each output is written under a
temporary name and renamed when complete; a video that fails is reported and skipped.

`--gop 16` also puts a key frame every 16 frames (what mmaction2's resize script calls `--dense`):
a decoder reaches any frame after at most 16 decoded frames instead of up to ~250 (libx264's
default key frame interval), so sparse 8-frame sampling decodes several times fewer frames, for a
larger file. With it, videos already small enough are re-encoded too; without it they are copied.

    python data_prep/resize_videos.py /data/k400/videos /data/k400/videos_320 --workers 8 --gop 16
"""
import argparse, os, shutil, subprocess, sys
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

VIDEO_EXTS = ('.mp4', '.avi', '.webm', '.mkv', '.mov', '.m4v', '.mpg', '.mpeg', '.flv', '.ogv')


def out_size(w: int, h: int, short: int) -> tuple[int, int]:
    "Width and height with the short side `short` (even sizes, aspect kept), or the input if already small."
    if min(w, h) <= short: return w, h
    if w <= h: return short, max(2, round(h * short / w / 2) * 2)
    return max(2, round(w * short / h / 2) * 2), short


def _codec(ext: str) -> str:
    return 'libvpx-vp9' if ext.lower() == '.webm' else 'libx264'


def _tmp(dst: Path) -> Path:
    return dst.with_name(f'.{dst.stem}.part{dst.suffix}')


def _stored_size(src: Path) -> tuple[int, int]:
    import av
    with av.open(str(src)) as inp:
        cc = inp.streams.video[0].codec_context
        return cc.width, cc.height


def resize_ffmpeg(src: Path, dst: Path, short: int, gop: int | None = None):
    w, h = _stored_size(src)
    if not gop and out_size(w, h, short) == (w, h):   # already small: copy as is, as resize_pyav does
        shutil.copyfile(src, _tmp(dst))
        return
    vf = (f"scale=w='if(lte(iw,ih),min({short},iw),-2)':h='if(lte(iw,ih),-2,min({short},ih))'")
    codec = ['-c:v', 'libvpx-vp9', '-crf', '32', '-b:v', '0', '-deadline', 'realtime', '-cpu-used', '8'] \
        if dst.suffix.lower() == '.webm' else ['-c:v', 'libx264', '-crf', '20', '-preset', 'veryfast', '-pix_fmt', 'yuv420p']
    cmd = ['ffmpeg', '-nostdin', '-loglevel', 'error', '-y', '-i', str(src), '-vf', vf, '-an', *codec,
           *(['-g', str(gop)] if gop else []), str(_tmp(dst))]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: raise RuntimeError(r.stderr.strip()[-500:] or f"ffmpeg exited with {r.returncode}")


def resize_pyav(src: Path, dst: Path, short: int, gop: int | None = None):
    import av
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        w, h = out_size(vin.codec_context.width, vin.codec_context.height, short)
        if not gop and (w, h) == (vin.codec_context.width, vin.codec_context.height):   # already small: copy as is
            shutil.copyfile(src, _tmp(dst))
            return
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        with av.open(str(_tmp(dst)), 'w') as out:
            vout = out.add_stream(_codec(dst.suffix), rate=rate)
            vout.width, vout.height = w, h
            vout.pix_fmt = 'yuv420p'
            if gop: vout.codec_context.gop_size = gop
            vout.options = {'crf': '20', 'preset': 'veryfast'} if vout.codec_context.name == 'libx264' else \
                {'crf': '32', 'b': '0', 'deadline': 'realtime', 'cpu-used': '8'}
            for i, frame in enumerate(inp.decode(vin)):   # constant frame rate, frame i at i / rate
                frame = frame.reformat(width=w, height=h, format='yuv420p')
                frame.pts, frame.time_base = i, 1 / Fraction(rate)
                frame.pict_type = av.video.frame.PictureType.NONE   # the encoder picks key frames, not the source
                for p in vout.encode(frame): out.mux(p)
            for p in vout.encode(): out.mux(p)


def resize_one(job) -> tuple[str, str | None]:
    "Resize one video; returns (relative path, error or None)."
    src, dst, short, use_ffmpeg, gop = job
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        (resize_ffmpeg if use_ffmpeg else resize_pyav)(src, dst, short, gop)
        os.replace(_tmp(dst), dst)
        return str(src), None
    except Exception as e:
        _tmp(dst).unlink(missing_ok=True)
        return str(src), f"{type(e).__name__}: {e}"


def resize_tree(src, dst, short: int = 320, workers: int | None = None, backend: str = 'auto',
                exts=VIDEO_EXTS, log=print, gop: int | None = None) -> dict:
    "Resize every video under `src` into `dst` (`gop`: a key frame every `gop` frames); returns counts and the failures."
    src, dst = Path(src), Path(dst)
    if not src.is_dir(): raise FileNotFoundError(f"Source folder {src} not found")
    use_ffmpeg = {'auto': shutil.which('ffmpeg') is not None, 'ffmpeg': True, 'pyav': False}[backend]
    if use_ffmpeg and not shutil.which('ffmpeg'): raise FileNotFoundError("--backend ffmpeg, but no `ffmpeg` on PATH")
    videos = sorted(p for p in src.rglob('*') if p.is_file() and p.suffix.lower() in exts and not p.name.startswith('.'))
    jobs = [(str(v), str(dst / v.relative_to(src)), short, use_ffmpeg, gop) for v in videos
            if not (dst / v.relative_to(src)).exists()]
    skipped, failed = len(videos) - len(jobs), []
    workers = workers or os.cpu_count() or 1
    if jobs:
        if workers == 1: results = map(resize_one, jobs)
        else:
            pool = ProcessPoolExecutor(workers)
            results = pool.map(resize_one, jobs, chunksize=4)
        try:
            from tqdm.auto import tqdm
            for path, err in tqdm(results, total=len(jobs), desc='resize', disable=log is None):
                if err: failed.append((path, err))
        finally:
            if workers != 1: pool.shutdown()
    stats = dict(found=len(videos), skipped=skipped, resized=len(jobs) - len(failed), failed=failed,
                 backend='ffmpeg' if use_ffmpeg else 'pyav')
    if log:
        log(f"{stats['found']} videos: {stats['resized']} resized ({stats['backend']}), {skipped} already done, "
            f"{len(failed)} failed")
        for path, err in failed[:10]: log(f"  failed: {path}: {err}")
    return stats


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('src', help='folder of videos (searched recursively)')
    p.add_argument('dst', help='output folder (same layout and names)')
    p.add_argument('--short-side', type=int, default=320)
    p.add_argument('--workers', type=int, default=None, help='processes (default: all cores)')
    p.add_argument('--backend', choices=['auto', 'ffmpeg', 'pyav'], default='auto')
    p.add_argument('--gop', type=int, default=None,
                   help="a key frame every GOP frames, e.g. 16 for fast sparse decoding (default: the encoder's own)")
    a = p.parse_args(argv)
    stats = resize_tree(a.src, a.dst, a.short_side, a.workers, a.backend, gop=a.gop)
    if stats['failed']: sys.exit(1)
    return stats


if __name__ == '__main__':
    main()
