"""Throughput of the video data path (`msta_core.video`): decode, decode + augment, DataLoader.

Writes two test videos into a temporary folder with PyAV (64 frames of panning blocky noise, H.264:
320x240 read at 224², and 64x64 read at 64²), then prints clips/s of 8-frame TSN clips

  - per worker (one process, torch with one thread, one decoder thread) for decord and PyAV:
    decode only, and decode + training augmentation (`train_transform`), best of 5 rounds;
  - through a `DataLoader` with 2 workers (batch 8, backend 'auto' = decord for mp4).

Usage: python benchmarks/bench_video.py [--seconds 2.5] [--frames 64]
"""
import argparse, sys, tempfile, time
from pathlib import Path

try:
    import msta_core  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av
import numpy as np
import torch

from msta_core.video import IMAGENET_MEAN_STD, num_frames, read_clip, train_transform, tsn_indices

T = 8


def write_noise_video(path, width, height, frames=64, block=8, seed=0):
    "Blocky random texture panned 2 px per frame, H.264 (libx264) in mp4."
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // block + 1, (width + 2 * frames) // block + 1, 3), dtype=np.uint8)
    texture = small.repeat(block, 0).repeat(block, 1)
    with av.open(str(path), 'w') as c:
        s = c.add_stream('libx264', rate=25)
        s.width, s.height, s.pix_fmt = width, height, 'yuv420p'
        for i in range(frames):
            img = np.ascontiguousarray(texture[:height, 2 * i:2 * i + width])
            for p in s.encode(av.VideoFrame.from_ndarray(img, format='rgb24')): c.mux(p)
        for p in s.encode(): c.mux(p)
    return path


def rate(fn, seconds, rounds=5):
    """Calls/s of `fn`: the best of `rounds` rounds of the same work (the same number of calls, torch
    re-seeded, so the same frames and the same random augmentations), about `seconds / rounds` each.
    The best round is the one least disturbed by other load on the machine."""
    torch.manual_seed(0)
    t0 = time.perf_counter(); fn(); fn(); warm = (time.perf_counter() - t0) / 2
    calls = max(2, round(seconds / rounds / warm))
    best = float('inf')
    for _ in range(rounds):
        torch.manual_seed(0)
        t0 = time.perf_counter()
        for _ in range(calls): fn()
        best = min(best, time.perf_counter() - t0)
    return calls / best


class TSNClips(torch.utils.data.Dataset):
    def __init__(self, path, size, length=64):
        self.path, self.length = path, length
        self.tfm = train_transform(size, *IMAGENET_MEAN_STD)
    def __len__(self): return self.length
    def __getitem__(self, i):
        return self.tfm(read_clip(self.path, lambda n: tsn_indices(n, T)))


def loader_rate(path, size, workers=2, batch_size=8, length=96):
    dl = torch.utils.data.DataLoader(TSNClips(path, size, length), batch_size=batch_size, num_workers=workers)
    it = iter(dl)
    next(it)  # workers started and warm
    t0, n = time.perf_counter(), 0
    for b in it: n += len(b)
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seconds', type=float, default=2.5, help='time per measurement (split into 5 rounds)')
    ap.add_argument('--frames', type=int, default=64, help='frames in each test video')
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # what a DataLoader worker gets
    print(f"torch {torch.__version__}, PyAV {av.__version__}, {T}-frame TSN clips, "
          f"videos of {args.frames} frames (H.264 mp4)")
    with tempfile.TemporaryDirectory() as d:
        cases = [(write_noise_video(Path(d) / 'noise_320x240.mp4', 320, 240, args.frames), 224),
                 (write_noise_video(Path(d) / 'noise_64x64.mp4', 64, 64, args.frames), 64)]
        print(f"\nper worker (1 process, 1 torch thread, 1 decoder thread), clips/s:")
        print(f"{'video':>10} {'out':>5} {'backend':>7} {'decode':>8} {'decode+augment':>15}")
        for path, size in cases:
            n = num_frames(path)
            tfm = train_transform(size, *IMAGENET_MEAN_STD)
            for backend in ('decord', 'pyav'):
                dec = rate(lambda: read_clip(path, tsn_indices(n, T), backend=backend), args.seconds)
                aug = rate(lambda: tfm(read_clip(path, tsn_indices(n, T), backend=backend)), args.seconds)
                print(f"{path.stem[6:]:>10} {size:>4}² {backend:>7} {dec:8.1f} {aug:15.1f}")
        print(f"\nDataLoader, 2 workers, batch 8, backend 'auto', decode+augment, clips/s (after the first batch):")
        for path, size in cases:
            print(f"{path.stem[6:]:>10} {size:>4}² {loader_rate(path, size):8.1f}")


if __name__ == '__main__':
    main()
