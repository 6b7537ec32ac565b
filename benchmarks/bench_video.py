"""Video input, side by side: clips/s per core of 8-frame TSN training clips at 224², our pipeline
(several configurations) beside the input pipelines of ViFi-CLIP and ST-Adapter, in one run, on the
same files, with the same frames.

Test videos, made here (kept with --videos DIR and reused on the next run):
  raw         10 s at 30 fps, H.264 as downloaded videos come (libx264 defaults: crf 23, a key frame
              every 250 frames, B-frames): 1280x720 from bigbuckbunny.mp4 and 640x360 from bikes.mp4
              (the real clips of `reference_data('real_videos')`, looped), or panning texture when
              those clips are absent;
  re-encoded  each raw video through data_prep/resize_videos.py as a user runs it (short side 320):
              with its defaults ('re'), and with a key frame every 16 frames, every 4, or every frame
              ('re-gop16', 're-gop4', 're-intra': --gop 16, 4, 1). A shorter GOP costs disk (the sizes are
              printed) and saves the decoding of the frames between a key frame and a sampled frame.
Sampling: 8 frames, one per segment (TSN, `tsn_indices`); every configuration gets the same frame
indices (one seeded generator per round). Per worker: one process, one torch thread, one decoder
thread; clips/s is the best of --rounds rounds of the same work.

Configurations
  ours                      read_clip (decord) + train_transform: what VideoDataset does per clip
  ours, short side 256      the same, frames scaled by the decoder (read_clip(short_side=256))
  ours, torchcodec [256]    the same with backend='torchcodec' (optional: pip install torchcodec + FFmpeg libraries)
  ours, PyAV                read_clip(backend='pyav')
  ours, crop in the worker  the worker decodes and crops to 224² (uint8, crop_transform); flip, colour jitter, grayscale
                            and normalisation left to the training device (BatchAugment, augment_on='device'), on the
                            batch: the CPU side of that arrangement
  ours, frame cache         VideoDataset(cache_frames=True) after the first epoch: index the cached frames + augment
  ViFi-CLIP (anchor)        its datasets/pipeline.py train pipeline: file read into memory, decord reader,
                            each sampled frame by random access, mmcv-style Resize(-1, 256) (cv2 bilinear),
                            MultiScaleCrop, Resize 224², Flip, per-frame PIL ColorJitter p=0.8, GrayScale p=0.2,
                            Normalize (numpy/cv2)
  ST-Adapter (anchor)       its video_dataset/dataset.py training path: file read into memory, PyAV decodes
                            every frame, sampled frames to RGB, float normalise, random resized crop
                            (scale 0.08-1, bicubic), mirror
  torchcodec CUDA           decode on the GPU + crop_transform and BatchAugment there (clips/s per GPU), where a GPU
                            and torchcodec are

Our rows decode in read_clip's decoding process (03_video), as VideoDataset does. --isolation measures instead what
that costs: the same clips decoded in the calling process (isolated=False), in the decoding process, and after a
PyAV check of the container, in alternated rounds.

Usage: python benchmarks/bench_video.py [--seconds 3] [--rounds 5] [--videos DIR] [--only re-gop16] [--clock cpu] [--loader]
       python benchmarks/bench_video.py --isolation [--only re-intra] [--rounds 9]
"""
import argparse, importlib.util, io, os, random, shutil, statistics, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import msta_core  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

import av
import decord
import numpy as np
import torch
import torch.nn.functional as F

from msta_core.core import reference_data
from msta_core.datasets import Sample, VideoSplit
from msta_core.loader import VideoDataset
from msta_core.augment import IMAGENET_MEAN_STD, BatchAugment, crop_transform, train_transform
from msta_core.video import read_clip, torchcodec_status, tsn_indices

T, SIZE, SHORT, SECONDS, FPS = 8, 224, 256, 10, 30
GOALS = dict(clips_per_core=25.0, vs_anchor=2.0)
REENCODED = {'re': None, 're-gop16': 16, 're-gop4': 4, 're-intra': 1}   # resize_videos.py's --gop (None: its default)
try:
    import cv2
    cv2.setNumThreads(1)
except ImportError:
    cv2 = None


# ---------------------------------------------------------------------------------------------- test videos
def _source_frames(name: str, width: int, height: int, n: int):
    "`n` RGB frames `height`x`width` from a real clip (looped, scaled to cover, centre-cropped), or None."
    real = reference_data('real_videos')
    if real is None or not (real / name).exists(): return None
    with av.open(str(real / name)) as c:
        src = [f for f in c.decode(video=0)]
    sw, sh = src[0].width, src[0].height
    s = max(width / sw, height / sh)
    cw, ch = max(width, round(sw * s / 2) * 2), max(height, round(sh * s / 2) * 2)
    x, y = (cw - width) // 2, (ch - height) // 2
    out = []
    for i in range(n):
        img = src[i % len(src)].to_ndarray(format='rgb24', width=cw, height=ch)
        out.append(np.ascontiguousarray(img[y:y + height, x:x + width]))
    return out


def _texture_frames(width: int, height: int, n: int, seed: int = 0):
    "Fallback content: blocky random texture panned 2 px per frame."
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + 1, (width + 2 * n) // 8 + 1, 3), dtype=np.uint8)
    tex = small.repeat(8, 0).repeat(8, 1)
    return [np.ascontiguousarray(tex[:height, 2 * i:2 * i + width]) for i in range(n)]


def write_raw_video(path: Path, frames):
    "Encode like a downloaded video: libx264 with its defaults (crf 23, preset medium, keyint 250, B-frames)."
    h, w = frames[0].shape[:2]
    with av.open(str(path), 'w') as c:
        s = c.add_stream('libx264', rate=FPS)
        s.width, s.height, s.pix_fmt = w, h, 'yuv420p'
        for img in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format='rgb24')): c.mux(p)
        for p in s.encode(): c.mux(p)


def make_videos(folder: Path, log=print) -> dict:
    "The raw and re-encoded test videos in `folder` (made once): {label: path}."
    raw, n = folder / 'raw', SECONDS * FPS
    raw.mkdir(parents=True, exist_ok=True)
    for name, src, (w, h) in [('bbb_1280x720.mp4', 'bigbuckbunny.mp4', (1280, 720)),
                              ('bikes_640x360.mp4', 'bikes.mp4', (640, 360))]:
        if (raw / name).exists(): continue
        frames = _source_frames(src, w, h, n)
        if frames is None:
            log(f"  {src} not found (python data_prep/fetch_splits.py fetches it): panning texture instead")
            frames = _texture_frames(w, h, n, seed=len(name))
        log(f"  encoding {name} ({n} frames)...")
        write_raw_video(raw / name, frames)
    spec = importlib.util.spec_from_file_location('resize_videos', REPO / 'data_prep' / 'resize_videos.py')
    rv = importlib.util.module_from_spec(spec); spec.loader.exec_module(rv)
    for label, gop in REENCODED.items():
        stats = rv.resize_tree(raw, folder / label, workers=1, log=None, gop=gop)
        if stats['failed']: raise RuntimeError(f"resize_videos.py failed: {stats['failed']}")
        if stats['resized']: log(f"  resize_videos.py{f' --gop {gop}' if gop else ''}: {stats['resized']} videos ({stats['backend']})")
    videos = {}
    for label in ('raw', *REENCODED):
        for p in sorted((folder / label).glob('*.mp4')): videos[f"{label} {p.stem.split('_')[0]}"] = p
    return videos


def describe(path: Path) -> str:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        keys = sum(1 for p in c.demux(s) if p.is_keyframe and p.size)
        return (f"{s.codec_context.width}x{s.codec_context.height}, {s.frames} frames at {float(s.average_rate):g} fps, "
                f"{keys} key frames, {path.stat().st_size / 2**20:.2f} MiB")


# ---------------------------------------------------------------------------------------------- our pipeline
TFM = train_transform(SIZE, *IMAGENET_MEAN_STD)


# augment_on='device': the worker's share is the random crop to SIZE² (uint8), so that clips of any stored size stack
# into one batch; BatchAugment does flip, colour jitter, grayscale and normalisation on the batch, on the training device
CROP, BATCH_AUG = crop_transform(SIZE), BatchAugment(*IMAGENET_MEAN_STD)


def ours(backend='decord', short_side=None, augment=TFM, isolated=True):
    def run(path, g):
        return augment(read_clip(path, lambda n: tsn_indices(n, T, g), backend=backend, short_side=short_side,
                                 isolated=isolated))
    return run


def pyav_checked(augment=TFM):
    "A guard against decoder crashes that was considered: PyAV opens the container (header, streams) before decord reads it here."
    here = ours(augment=augment, isolated=False)
    def run(path, g):
        with av.open(str(path)) as c:
            if not c.streams.video: raise RuntimeError(f"{path}: no video stream")
        return here(path, g)
    return run


def ours_cached(path, short_side=None):
    "VideoDataset(cache_frames=True) after the first epoch: the whole video decoded once, uint8, in memory."
    frames = read_clip(path, lambda n: torch.arange(n), short_side=short_side).contiguous()
    return lambda _path, g: TFM(frames[tsn_indices(len(frames), T, g)])


# ---------------------------------------------------------------------------------------------- ViFi-CLIP's pipeline
def _resize(img, w, h):
    "mmcv.imresize(img, (w, h), interpolation='bilinear'): cv2.resize, or PIL's bilinear where cv2 is absent."
    if cv2 is not None: return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    from PIL import Image
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def vifi_clip():
    "ViFi-CLIP's train pipeline (datasets/build.py + datasets/pipeline.py), with our TSN indices for SampleFrames."
    import torchvision
    from PIL import Image
    jitter = torchvision.transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
    gray = torchvision.transforms.Grayscale(num_output_channels=3)
    mean = np.array([123.675, 116.28, 103.53], np.float64).reshape(1, -1)
    stdinv = 1 / np.array([58.395, 57.12, 57.375], np.float64).reshape(1, -1)
    scales, fixed = (1, .875, .75, .66), 5

    def run(path, g):
        vr = decord.VideoReader(io.BytesIO(Path(path).read_bytes()), num_threads=1)        # DecordInit
        inds = tsn_indices(len(vr), T, g).numpy()                                           # SampleFrames
        frames = {i: vr[i].asnumpy() for i in np.unique(inds)}                              # DecordDecode
        imgs = [frames[i] for i in inds]
        del vr
        h, w = imgs[0].shape[:2]                                                            # Resize(-1, 256)
        f = SHORT / min(h, w)
        w, h = int(w * f + 0.5), int(h * f + 0.5)
        imgs = [_resize(im, w, h) for im in imgs]
        base = min(h, w)                                                                    # MultiScaleCrop
        sizes = [int(base * s) for s in scales]
        cands = [[cw, ch] for i, ch in enumerate(sizes) for j, cw in enumerate(sizes) if abs(i - j) <= 1]
        crop = random.choice(cands)
        crop = [SIZE if abs(c - SIZE) < 3 else c for c in crop]
        cw, ch = crop
        ws, hs = (w - cw) // 4, (h - ch) // 4
        x, y = random.choice([(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)][:fixed])
        imgs = [im[y:y + ch, x:x + cw] for im in imgs]
        imgs = [_resize(im, SIZE, SIZE) for im in imgs]                                     # Resize(224, 224)
        if np.random.rand() < 0.5:                                                          # Flip (mmcv.imflip_)
            imgs = [cv2.flip(im, 1, im) if cv2 is not None else np.ascontiguousarray(im[:, ::-1]) for im in imgs]
        if random.random() < 0.8:                                                           # ColorJitter, per frame
            imgs = [np.asarray(jitter(Image.fromarray(im))) for im in imgs]
        if random.random() < 0.2:                                                           # GrayScale
            imgs = [np.asarray(gray(Image.fromarray(im))) for im in imgs]
        out = np.empty((len(imgs), SIZE, SIZE, 3), np.float32)                              # Normalize
        for i, im in enumerate(imgs): out[i] = im
        for im in out:
            if cv2 is not None: cv2.subtract(im, mean, im); cv2.multiply(im, stdinv, im)
            else: im -= mean; im *= stdinv
        return torch.from_numpy(np.transpose(out, (0, 3, 1, 2)))                            # FormatShape, ToTensor
    return run


# ---------------------------------------------------------------------------------------------- ST-Adapter's pipeline
def _st_crop_params(height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    "SlowFast's _get_param_spatial_crop, which ST-Adapter's random_resized_crop uses."
    import math
    for _ in range(10):
        area = height * width
        target = random.uniform(*scale) * area
        aspect = math.exp(random.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return random.randint(0, height - h), random.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < min(ratio): w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio): h, w = height, int(round(height * max(ratio)))
    else: w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def st_adapter():
    "ST-Adapter's VideoDataset training path (random_resized_crop, bicubic, mirror), with our TSN indices."
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])

    def run(path, g):
        container = av.open(io.BytesIO(Path(path).read_bytes()))
        container.streams.video[0].thread_count = 1
        frames = {}
        for frame in container.decode(video=0): frames[frame.pts] = frame
        container.close()
        frames = [frames[k] for k in sorted(frames)]
        idx = tsn_indices(len(frames), T, g).tolist()
        x = torch.as_tensor(np.stack([frames[i].to_rgb().to_ndarray() for i in idx])).float() / 255.
        x = ((x - mean) / std).permute(3, 0, 1, 2)                                          # C, T, H, W
        i, j, h, w = _st_crop_params(x.shape[2], x.shape[3])
        x = F.interpolate(x[:, :, i:i + h, j:j + w], size=(SIZE, SIZE), mode='bicubic', align_corners=False)
        if torch.rand(1).item() < 0.5: x = x.flip(dims=(-1,))
        return x
    return run


# ---------------------------------------------------------------------------------------------- torchcodec on CUDA
def torchcodec_cuda():
    from torchcodec.decoders import VideoDecoder
    def run(path, g):
        dec = VideoDecoder(str(path), device='cuda', seek_mode='exact')
        clip = CROP(dec.get_frames_at(tsn_indices(len(dec), T, g).tolist()).data)
        x = BATCH_AUG(clip[None], torch.randint(0, 2**62, (1,)))      # a batch of one; its seed from the round's RNG, not g
        torch.cuda.synchronize()
        return x
    return run


# ---------------------------------------------------------------------------------------------- measuring
def rate(fn, path, seconds, rounds, clock=time.perf_counter):
    """Clips/s of `fn(path, g)`: the best of `rounds` rounds of the same work (same calls, every seed reset,
    so the same frames and the same augmentations), about `seconds / rounds` each. `clock=time.process_time`
    counts this process's CPU time (all its threads) instead of the wall clock: steadier on a busy machine."""
    def one_round(calls):
        g = torch.Generator().manual_seed(0)
        torch.manual_seed(0); random.seed(0); np.random.seed(0)
        t0 = clock()
        for _ in range(calls): fn(path, g)
        return clock() - t0
    warm = one_round(1)
    calls = max(2, round(seconds / rounds / warm))
    return calls / min(one_round(calls) for _ in range(rounds))


def cpu_seconds_with_decoder() -> float:
    "CPU seconds of this process and of its decoding process (Linux: read from /proc) together."
    from msta_core.video import _decoding_process
    t, pid = time.process_time(), _decoding_process().pid
    if pid is not None:
        try: t += sum(int(x) for x in Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[11:13]) / os.sysconf('SC_CLK_TCK')
        except (OSError, ValueError): pass
    return t


def isolation_table(videos, seconds, rounds, clock='wall', log=print):
    """What decoding in the decoding process costs: clips/s of decord in the calling process (`isolated=False`), in the
    decoding process (`read_clip`'s default), and after a PyAV header check, in alternated rounds (the order rotating
    each round). Ratios are taken within a round. `clock='cpu'`: clips per CPU second of this process and its decoding
    process together (Linux), what a machine whose cores are all busy with loader workers would see."""
    timer = cpu_seconds_with_decoder if clock == 'cpu' else time.perf_counter
    configs = [('decord, in this process (isolated=False)', lambda a: ours(augment=a, isolated=False)),
               ('decord, in the decoding process (the default)', lambda a: ours(augment=a)),
               ('PyAV opens the file, then decord in this process', lambda a: pyav_checked(a))]
    tc = torchcodec_status() is None
    if tc: configs += [('torchcodec, in this process (isolated=False)', lambda a: ours('torchcodec', augment=a, isolated=False)),
                       ('torchcodec, in the decoding process (the default)', lambda a: ours('torchcodec', augment=a))]
    def one_round(fn, path, calls):
        g = torch.Generator().manual_seed(0)
        torch.manual_seed(0); random.seed(0); np.random.seed(0)
        t0 = timer()
        for _ in range(calls): fn(path, g)
        return calls / (timer() - t0)
    import msta_core.video as mv
    log(f"\nWhat the decoding process itself adds per clip ({'CPU time of both processes' if clock == 'cpu' else 'wall clock'}; "
        f"{rounds} alternated rounds, the median of the per-round differences), with a stand-in decoder that hands over the "
        f"clip's {T} frames already decoded, in both processes: only the messages and the copies of the frames differ")
    for label, path in videos.items():
        n, real = mv.num_frames(path, isolated=False), mv._decord_read
        frames = read_clip(path, lambda k: tsn_indices(k, T, torch.Generator().manual_seed(0)), isolated=False).movedim(-3, -1).contiguous()
        def ready(p, indices, num_threads, short_side=None):
            mv._resolve_indices(indices, n, p)
            return frames.clone()                        # a decoder's fresh array
        mv._decord_read = ready; mv.stop_decoding_process()   # the next decoding process has the stand-in too
        try:
            fns = {iso: (lambda p, g, iso=iso: read_clip(p, lambda k: tsn_indices(k, T, g), backend='decord', isolated=iso))
                   for iso in (False, True)}
            calls = max(20, round(seconds / rounds / 2 / 0.003))   # ~3 ms a call
            ms = {iso: [] for iso in fns}
            for r in range(rounds):
                for iso in ((False, True) if r % 2 else (True, False)): ms[iso].append(1000 / one_round(fns[iso], path, calls))
            extra = statistics.median(b - a for a, b in zip(ms[False], ms[True]))
            log(f"  {label:<16} {tuple(frames.shape)} uint8 ({frames.numel() / 2**20:.1f} MiB): {extra:.2f} ms per clip "
                f"(in this process {statistics.median(ms[False]):.2f} ms, in the decoding process {statistics.median(ms[True]):.2f} ms)")
        finally:
            mv._decord_read = real; mv.stop_decoding_process()
    log(f"\nDecoding in the decoding process against in this process: {rounds} alternated rounds, "
        f"{'CPU time of this process and its decoding process' if clock == 'cpu' else 'wall clock'}, clips/s "
        f"(median [min–max]); ratio: the median over rounds of the row's clips/s over the same round's first row")
    for aug_name, aug in (('decode + train_transform', TFM), ('decode + crop (augment_on=device)', CROP)):
        for label, path in videos.items():
            fns = [(name, make(aug)) for name, make in configs]
            calls = {name: max(2, round(seconds / rounds / (1 / one_round(fn, path, 1)))) for name, fn in fns}   # warm-up
            got = {name: [] for name, _ in fns}
            for r in range(rounds):
                for name, fn in fns[r % len(fns):] + fns[:r % len(fns)]: got[name].append(one_round(fn, path, calls[name]))
            log(f"  {label} — {aug_name}:")
            for name, _ in fns:
                base = 'torchcodec, in this process (isolated=False)' if name.startswith('torchcodec') else fns[0][0]
                xs, ratio = got[name], statistics.median(a / b for a, b in zip(got[name], got[base]))
                log(f"    {name:<52} {statistics.median(xs):6.1f} [{min(xs):.1f}–{max(xs):.1f}]   × {ratio:.3f}")


def loader_rate(path, workers=2, batch_size=8, length=64):
    "Clips/s of the training set's own path: a DataLoader with `workers` workers over `VideoDataset` (TSN, decode, augment)."
    split = VideoSplit(path.parent, [Sample(path.name, 0)] * length, ['clip'])
    ds = VideoDataset(split, T, SIZE, mean=IMAGENET_MEAN_STD[0], std=IMAGENET_MEAN_STD[1], mode='train', backend='decord')
    it = iter(torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=workers))
    next(it)  # workers started and warm
    t0, n = time.perf_counter(), 0
    for b in it: n += len(b['video'])
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split('\n', 1)[1])
    ap.add_argument('--seconds', type=float, default=3.0, help='time per measurement, split into the rounds')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--videos', type=Path, default=None, help='folder for the test videos (kept, reused); default: a temporary one')
    ap.add_argument('--only', nargs='*', default=None, help="video labels to measure, e.g. 're-gop16 bbb' (default: all)")
    ap.add_argument('--clock', choices=['wall', 'cpu'], default='wall',
                    help="'cpu': clips per second of this process's CPU time, for a machine busy with other work (our rows "
                         "then decode in this process, isolated=False: the decoding process's CPU time is not this process's)")
    ap.add_argument('--loader', action='store_true', help='also a DataLoader with 2 workers on the re-encoded videos')
    ap.add_argument('--isolation', action='store_true',
                    help="only what the decoding process costs: read_clip's default against decoding in this process "
                         "(and against a PyAV header check first), in alternated rounds (with --clock cpu: the CPU time "
                         "of this process and its decoding process)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # what a DataLoader worker gets
    tc_why = torchcodec_status()
    tc_cuda_why = tc_why or (None if torch.cuda.is_available() else 'no CUDA device')
    print(f"torch {torch.__version__}, decord {decord.__version__}, PyAV {av.__version__}, "
          f"torchcodec {'absent: ' + tc_why if tc_why else __import__('torchcodec').__version__}, "
          f"OpenCV {cv2.__version__ if cv2 else 'absent (the ViFi-CLIP resize uses PIL bilinear instead)'}, "
          f"ffmpeg program {'on PATH' if shutil.which('ffmpeg') else 'absent (resize_videos.py uses PyAV)'}")
    print(f"{T}-frame TSN clips at {SIZE}²; per worker: 1 process, 1 torch thread, 1 decoder thread; "
          f"best of {args.rounds} rounds, ~{args.seconds:g} s per measurement, {args.clock} clock; load average at start "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    tmp = None if args.videos else tempfile.TemporaryDirectory()
    folder = args.videos or Path(tmp.name)
    print(f"\ntest videos in {folder}:")
    videos = make_videos(folder)
    if args.only: videos = {k: v for k, v in videos.items() if any(o in k for o in args.only)}
    for label, p in videos.items(): print(f"  {label:<16} {p.parent.name}/{p.name}: {describe(p)}")
    if not videos: sys.exit(f"no test video matches --only {' '.join(args.only)}")
    if args.isolation:
        isolation_table(videos, args.seconds, args.rounds, args.clock)
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
        if tmp: tmp.cleanup()
        return

    iso = args.clock != 'cpu'       # the cpu clock counts this process only: decode in it
    ours_ = lambda *a, **k: ours(*a, isolated=iso, **k)
    configs = [('ours', 'decord', lambda p: ours_()),
               ('ours, short side 256', 'decord', lambda p: ours_(short_side=SHORT)),
               ('ours, torchcodec', 'torchcodec', lambda p: ours_('torchcodec')),
               ('ours, torchcodec, short side 256', 'torchcodec', lambda p: ours_('torchcodec', SHORT)),
               ('ours, PyAV', 'PyAV', lambda p: ours_('pyav')),
               ('ours, crop in the worker, rest of the augmentation on the training device', 'decord', lambda p: ours_(augment=CROP)),
               ('ours, crop in the worker, rest of the augmentation on the training device', 'torchcodec', lambda p: ours_('torchcodec', augment=CROP)),
               ('ours, frame cache (cache_frames=True, after the first epoch)', 'in memory', ours_cached),
               ('ViFi-CLIP (anchor)', 'decord', lambda p: vifi_clip()),
               ('ST-Adapter (anchor)', 'PyAV, every frame', lambda p: st_adapter()),
               ('torchcodec CUDA, augment on the GPU (per GPU)', 'torchcodec CUDA', lambda p: torchcodec_cuda())]
    results, skipped = {}, {}
    print("\nmeasuring (clips/s):")
    for name, dec, make in configs:
        why = tc_cuda_why if dec == 'torchcodec CUDA' else tc_why if dec == 'torchcodec' else None
        if why: skipped[(name, dec)] = why; continue
        row = results[(name, dec)] = {}
        for label, path in videos.items():
            row[label] = rate(make(path), path, args.seconds, args.rounds,
                              time.process_time if args.clock == 'cpu' else time.perf_counter)
        print(f"  {name} [{dec}]: " + ", ".join(f"{l} {v:.1f}" for l, v in row.items()), flush=True)

    labels = list(videos)
    vifi, st = results[('ViFi-CLIP (anchor)', 'decord')], results[('ST-Adapter (anchor)', 'PyAV, every frame')]
    span = lambda xs: f"{min(xs):.2f}–{max(xs):.2f}" if len(xs) > 1 else f"{xs[0]:.2f}"
    print(f"\n| configuration | decoder | " + " | ".join(labels) + " | × ViFi-CLIP | × ST-Adapter |")
    print("|---|---|" + "---:|" * (len(labels) + 2))
    for (name, dec), row in results.items():
        print(f"| {name} | {dec} | " + " | ".join(f"{row[l]:.1f}" for l in labels) +
              f" | {span([row[l] / vifi[l] for l in labels])} | {span([row[l] / st[l] for l in labels])} |")
    for (name, dec), why in skipped.items():
        print(f"| {name} | {dec} | " + " | ".join('—' for _ in labels) + f" | not measured: {why} | |")
    print("(clips/s per core, except the CUDA row; × columns: the range over the videos of this row's clips/s "
          "over the anchor's on the same video)")

    # the project's goals, checked on this run, for each re-encoding: the complete per-clip pipelines in the worker
    # (decode + augment), and the worker's share when the rest of the augmentation runs on the training device
    full = {k: v for k, v in results.items() if k[0].startswith('ours') and 'cache' not in k[0]}
    re_labels = [l for l in labels if l.startswith('re')]
    print(f"\nGoals (the project's; the figures are this run's), for each re-encoding, worst video of the group; "
          f"'*' marks a pipeline that leaves flip, colour jitter and normalisation to the training device:")
    groups = {g: [l for l in re_labels if l.split()[0] == g] for g in REENCODED}
    for g, ls in groups.items():
        if not ls or not full: continue
        rate_of = lambda k: min(full[k][l] for l in ls)
        for what, keys in (('in the worker', [k for k in full if 'worker' not in k[0]]),
                           ('* worker share', [k for k in full if 'worker' in k[0]])):
            if not keys: continue
            best = max(keys, key=rate_of)
            vs = {a: min(full[best][l] / ref[l] for l in ls) for a, ref in (('ViFi-CLIP', vifi), ('ST-Adapter', st))}
            print(f"  {g:<9} {what:<15} best {best[1]:<10} {rate_of(best):5.1f} clips/s/core "
                  f"({'met' if rate_of(best) >= GOALS['clips_per_core'] else 'not met'}: ≥ {GOALS['clips_per_core']:g}); "
                  + '; '.join(f"{x:.2f}× {a} ({'met' if x >= GOALS['vs_anchor'] else 'not met'})" for a, x in vs.items()))
    if not re_labels: print("  (no re-encoded video measured: --only left them out)")

    if args.loader and re_labels:
        print(f"\nDataLoader, 2 workers, batch 8, ours (decord), decode + augment, clips/s after the first batch:")
        for l in re_labels: print(f"  {l:<16} {loader_rate(videos[l]):8.1f}")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    if tmp: tmp.cleanup()


if __name__ == '__main__':
    main()
