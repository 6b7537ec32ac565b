#!/usr/bin/env python
"""Generate the synthetic video world (see nbs/14_synthetic.ipynb and nbs/14a_world.ipynb): real mp4
files, label lists, split files, captions and descriptions. Idempotent: a finished world with the same
settings is found, not regenerated; an interrupted one is finished.

    python data_prep/make_synthetic.py                     # into the cache: ~/.cache/msta/synthetic_world
    python data_prep/make_synthetic.py /data/synthetic_world --seed 1
"""
import argparse, time

from msta_core.core import cache_dir
from msta_core.world import generate_world, WorldConfig


def main(argv=None):
    d = WorldConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('root', nargs='?', default=None,
                   help='output folder (default: the cache, $MSTA_CACHE or ~/.cache/msta, /synthetic_world)')
    p.add_argument('--seed', type=int, default=d.seed)
    p.add_argument('--size', type=int, default=d.size, help='frame height = width in pixels (default: %(default)s)')
    p.add_argument('--frames', type=int, default=d.frames, help='frames per clip (default: %(default)s)')
    p.add_argument('--videos-per-class', type=int, default=d.videos_per_class,
                   help='training videos per action class (default: %(default)s)')
    p.add_argument('--pretrain-per-class', type=int, default=d.pretrain_per_class,
                   help='pre-training videos per seen composition (default: %(default)s)')
    p.add_argument('--test-per-class', type=int, default=d.test_per_class,
                   help='test videos per class (default: %(default)s)')
    p.add_argument('--codec', default=d.codec, choices=['auto', 'libx264', 'mpeg4'])
    p.add_argument('--workers', type=int, default=None, help='processes (default: all cores, at most 8)')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    a = p.parse_args(argv)
    t0 = time.time()
    info = generate_world(a.root or cache_dir() / 'synthetic_world', seed=a.seed, size=a.size, frames=a.frames, videos_per_class=a.videos_per_class,
                          pretrain_per_class=a.pretrain_per_class, test_per_class=a.test_per_class, codec=a.codec,
                          workers=a.workers, progress=not a.quiet)
    state = f"generated in {info.seconds:.1f} s" if info.seconds else "already complete"
    print(f"{info.root}: {info.n_videos} videos ({info.codec}, {a.size}x{a.size}x{a.frames}), {state} "
          f"({time.time() - t0:.1f} s in all)")
    print(f"  {len(info.compositions)} compositions ({len(info.heldout)} held out of pre-training), "
          f"{len(info.actions)} actions ({len(info.base)} base / {len(info.novel)} novel)")
    return info


if __name__ == '__main__':
    main()
