#!/usr/bin/env python
"""Check, before training, that every video of a dataset can be read the way the loader reads it (its header, its
frame count, a few frames spread over it with the first and the last), in parallel, each video in a decoding process
of its own so that no file can stop the check. The videos that cannot be read are listed, with the reason, in
ROOT/unreadable_videos.tsv, where `VideoDataset` finds the list and skips them without opening them again (a file
replaced since the check is read again). Checking again replaces the lines of the videos checked and keeps the others.

    python data_prep/check_videos.py /data/ucf101/videos data/vifi_clip_splits/datasets_splits/ucf_splits/*.txt
    python data_prep/check_videos.py /data/k400/videos              # every video under the root

Exit status: 0 every video could be read; 1 some could not (listed: training will skip them); 2 wrong arguments.
"""
import argparse, os, sys, time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import msta_core  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

from msta_core.datasets import VIDEO_EXTS, read_split
from msta_core.loader import SKIP_LIST, check_videos, write_skip_list
from msta_core.video import BACKENDS


def listed_videos(root: Path, splits: list[Path]) -> list[str]:
    "The videos of the split files (paths relative to `root`), or every video file under `root` if there are none."
    if splits: return list(dict.fromkeys(s.path for f in splits for s in read_split(f)))
    return sorted(p.relative_to(root).as_posix() for p in root.rglob('*')
                  if p.is_file() and p.suffix.lower() in VIDEO_EXTS and not p.name.startswith('.'))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('root', type=Path, help='the folder the split files\' paths are relative to')
    ap.add_argument('splits', type=Path, nargs='*', help='split files (`relative/path label` lines); none: every video under root')
    ap.add_argument('--workers', type=int, default=os.cpu_count(), help='processes (default: one per core)')
    ap.add_argument('--frames', type=int, default=8, help='frames read per video besides the first and the last (0: every frame)')
    ap.add_argument('--backend', default='auto', choices=BACKENDS, help="the decoder, as the loader's `backend` (default: auto)")
    ap.add_argument('--list', type=Path, default=None,
                    help=f'where to write the list (default: ROOT/{SKIP_LIST}, where VideoDataset looks; elsewhere, '
                         f'give the dataset skip_list=FILE)')
    ap.add_argument('--quiet', action='store_true', help='no progress bar')
    args = ap.parse_args(argv)
    if not args.root.is_dir(): ap.error(f"{args.root} is not a folder")
    try: paths = listed_videos(args.root, args.splits)
    except (OSError, ValueError) as e: ap.error(str(e))
    if not paths: ap.error(f"no video to check ({'the split files list none' if args.splits else f'none under {args.root}'})")
    list_file = args.list or args.root / SKIP_LIST
    if not os.access(list_file.parent, os.W_OK):
        ap.error(f"cannot write {list_file} (no write access to {list_file.parent}): give --list FILE elsewhere, and "
                 f"the dataset skip_list=FILE")

    t0 = time.time()
    bad = check_videos(args.root, paths, backend=args.backend, frames=args.frames, workers=args.workers, progress=not args.quiet)
    if bad or list_file.exists(): write_skip_list(list_file, args.root, bad, paths)

    print(f"{len(paths)} videos checked in {time.time() - t0:.0f} s: {len(paths) - len(bad)} readable, {len(bad)} unreadable")
    if bad:
        kinds = Counter(why.split(';')[0][:80] for why in bad.values())
        print("most common reasons:\n" + '\n'.join(f"  {n:6d}  {k}" for k, n in kinds.most_common(5)))
        print("unreadable:\n" + '\n'.join(f"  {p}: {bad[p]}" for p in sorted(bad)[:10])
              + (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ''))
        print(f"listed in {list_file}: " + ("VideoDataset skips them without opening them again."
                                            if list_file == args.root / SKIP_LIST else
                                            f"give the dataset skip_list='{list_file}' to skip them."))
    if len(bad) > len(paths) / 2:
        print(f"more than half the videos cannot be read: is {args.root} the folder the split files' paths are relative to?")
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
