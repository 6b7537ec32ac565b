#!/usr/bin/env python
"""Download the public split files and label lists of ViFi-CLIP (github.com/muzairkhattak/ViFi-CLIP:
labels/*.csv, datasets_splits/**.txt) and the MSTA authors' LLM descriptions
(github.com/chenhaoxing/ETL4Video: description/*.json). Needs internet; files already present
are kept (--force re-downloads); every file is written atomically and checked after download.

    python data_prep/fetch_splits.py --out data/vifi_clip_splits --what splits
    python data_prep/fetch_splits.py --out data/msta_descriptions --what descriptions
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
    elif path.suffix == '.txt': read_split(path)
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
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--what', choices=['splits', 'descriptions'], default='splits')
    p.add_argument('--with-k400-train', action='store_true', help="also the full K400 train list (large)")
    p.add_argument('--ref', default=None, help='git branch/tag/commit (default: main, then master)')
    p.add_argument('--force', action='store_true', help='download files that are already there')
    p.add_argument('--timeout', type=float, default=30)
    a = p.parse_args(argv)
    refs = (a.ref,) if a.ref else ('main', 'master')
    try:
        if a.what == 'splits':
            files = VIFI_FILES + (VIFI_LARGE if a.with_k400_train else [])
            got = fetch(a.out, files, VIFI_REPO, refs, force=a.force, timeout=a.timeout)
        else:
            got = fetch(a.out, DESCRIPTION_FILES, ETL_REPO, refs, strip='description/', force=a.force, timeout=a.timeout)
    except ConnectionError as e:
        sys.exit(f"fetch_splits: {e}")
    print(f"{len(got)} files in {a.out}")
    return got


if __name__ == '__main__':
    main()
