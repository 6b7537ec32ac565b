"""Damaged videos, made here from a clip of our own, cost one sample and never a run: read by `VideoDataset` in
DataLoader workers (a file at which decord aborts its process among them), and checked before training by
`data_prep/check_videos.py`, whose list the dataset then skips.

The file that aborts decord promises 2^32-1 frames in its sample table (four bytes changed): decord reserves room for
an index entry per frame and, where the allocation fails, `std::bad_alloc` ends the process. Whether it fails depends
on the machine's memory, so these tests run their reader in a subprocess whose address space is limited (16 GiB more
than it starts with): there it fails on every machine. (The version of that damage repeated 2048 times fails anywhere.)"""
import json, os, random, resource, shutil, subprocess, sys, textwrap
from pathlib import Path

import numpy as np
import pytest

from msta_core.video import damage_frame_count, encode_mp4

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 16 << 30


def limited():
    "In the child, before it starts: an address space of 16 GiB more than the test process holds."
    vm = int(next(l for l in open('/proc/self/status') if l.startswith('VmSize:')).split()[1]) << 10
    resource.setrlimit(resource.RLIMIT_AS, (vm + LIMIT, resource.getrlimit(resource.RLIMIT_AS)[1]))


def run(args, **kw):
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, preexec_fn=limited,
                          env={**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}, **kw)   # this checkout's msta_core


def clip(seed: int, frames: int = 16, h: int = 48, w: int = 64) -> bytes:
    "A small panning texture, H.264 (as the synthetic world writes its clips)."
    base = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return encode_mp4(np.stack([np.roll(base, 3 * t, axis=1) for t in range(frames)]))


def randomly_damaged(data: bytes, seed: int) -> bytes:
    "Four random bytes changed in the index (`moov`) of an mp4, as a bad download or disk leaves them."
    rng, b = random.Random(seed), bytearray(data)
    start = data.index(b'moov') - 4
    for _ in range(4): b[rng.randrange(start, len(data))] = rng.randrange(256)
    return bytes(b)


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    "Good clips, a truncated one, the one decord aborts at, and some randomly damaged ones."
    d = tmp_path_factory.mktemp('videos')
    good = {f'good{i}.mp4': clip(i) for i in range(3)}
    for name, data in good.items(): (d / name).write_bytes(data)
    (d / 'truncated.mp4').write_bytes(good['good0.mp4'][:len(good['good0.mp4']) // 2])
    (d / 'aborts.mp4').write_bytes(damage_frame_count(good['good1.mp4']))
    for seed in range(12): (d / f'random{seed}.mp4').write_bytes(randomly_damaged(good['good2.mp4'], seed))
    return d


def test_the_damaged_file_aborts_decord(tree):
    "The premise: a process that opens it with decord ends with SIGABRT (std::bad_alloc), which no Python code catches."
    r = run([sys.executable, '-c', f'import decord; decord.VideoReader({str(tree / "aborts.mp4")!r})'])
    assert r.returncode == -6 and 'std::bad_alloc' in r.stderr, (r.returncode, r.stderr[-500:])


LOADER = textwrap.dedent('''
    import json, sys, torch
    from pathlib import Path
    from torch.utils.data import DataLoader
    from msta_core.datasets import Sample, VideoSplit
    from msta_core.loader import EpochSampler, VideoDataset
    from msta_core.viclip import CLIP_MEAN, CLIP_STD
    root, names = Path(sys.argv[1]), sys.argv[2:]
    split = VideoSplit(root, [Sample(n, i % 2) for i, n in enumerate(names)], ['a', 'b'])
    out = {}
    for mode in ('train', 'test'):
        ds = VideoDataset(split, num_frames=4, input_resolution=32, mean=CLIP_MEAN, std=CLIP_STD, mode=mode)
        order = EpochSampler(len(split), seed=0, shuffle=False)
        batches = list(DataLoader(ds, batch_size=4, sampler=order, num_workers=2))
        videos = torch.cat([b['video'] for b in batches])
        same = [torch.equal(videos[k], ds[key]['video']) for k, key in enumerate(order)]   # as read in this process
        out[mode] = {'skipped': [p for b in batches for p in b['skipped']], 'labels': torch.cat([b['label'] for b in batches]).tolist(),
                     'same': same}
    print(json.dumps(out))
''')


def test_damaged_files_cost_one_sample_each_in_loader_workers(tree):
    "Read through VideoDataset by a DataLoader with 2 workers, the file that aborts decord and the randomly damaged "
    "ones are skipped (training) or reported (test), the epoch completes, and the good clips are the ones read in one process."
    names = ['good0.mp4', 'aborts.mp4', 'good1.mp4', 'truncated.mp4'] + [f'random{s}.mp4' for s in range(12)] + ['good2.mp4']
    r = run([sys.executable, '-c', LOADER, str(tree), *names])
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    test, train = out['test'], out['train']
    named = lambda ps: {Path(p).name for p in ps if p}
    for got in (train, test):                                       # (the randomly damaged: as their decoders manage)
        assert {'aborts.mp4', 'truncated.mp4'} <= named(got['skipped']) and not named(got['skipped']) & {'good0.mp4', 'good1.mp4', 'good2.mp4'}
    assert [l for l, p in zip(test['labels'], test['skipped']) if p] == [-1] * sum(map(bool, test['skipped']))   # reported
    assert -1 not in train['labels'] and len(train['labels']) == len(names)                                    # replaced
    good = [i for i, n in enumerate(names) if n.startswith('good')]          # (a damaged stream may decode differently
    assert all(train['same'][i] and test['same'][i] for i in good)           # from one try to the next)
    assert 'killed by SIGABRT' in r.stderr or 'std::bad_alloc' in r.stderr


def test_check_videos_lists_what_cannot_be_read(tree, tmp_path):
    "The pre-flight check on a tree with good, truncated and damaged files: it names the unreadable ones, lists them "
    "beside the videos, exits with 1; the dataset then skips them without opening them; after a fix, exit 0."
    tree = Path(shutil.copytree(tree, tmp_path / 'videos'))              # (changed below)
    split = tmp_path / 'split.txt'
    split.write_text('good0.mp4 0\ntruncated.mp4 1\naborts.mp4 0\ngood1.mp4 1\nmissing.mp4 0\n')
    r = run([sys.executable, 'data_prep/check_videos.py', str(tree), str(split), '--workers', '2', '--quiet'])
    assert r.returncode == 1, r.stdout + r.stderr[-3000:]
    assert '5 videos checked' in r.stdout and '2 readable, 3 unreadable' in r.stdout
    from msta_core.loader import SKIP_LIST, VideoDataset, read_skip_list
    listed = read_skip_list(tree / SKIP_LIST)
    assert set(listed) == {'truncated.mp4', 'aborts.mp4', 'missing.mp4'}
    assert 'killed by SIGABRT' in listed['aborts.mp4'][2] and listed['missing.mp4'][2] == 'file not found'
    from msta_core.datasets import VideoSplit
    from msta_core.viclip import CLIP_MEAN, CLIP_STD
    import msta_core.loader as loader
    ds = VideoDataset(VideoSplit.load(tree, split, _labels(tmp_path)), num_frames=4, input_resolution=32, mean=CLIP_MEAN, std=CLIP_STD, mode='test')
    opened, real = [], loader.read_clip
    loader.read_clip = lambda path, *a, **k: (opened.append(Path(path).name), real(path, *a, **k))[1]
    try: items = [ds[(i, 0)] for i in range(len(ds))]
    finally: loader.read_clip = real
    assert [it['label'].item() for it in items] == [0, -1, -1, 1, -1] and set(opened) == {'good0.mp4', 'good1.mp4'}
    (tree / 'aborts.mp4').write_bytes((tree / 'good1.mp4').read_bytes())          # replaced by a good file
    (tree / 'truncated.mp4').unlink()
    split.write_text('good0.mp4 0\naborts.mp4 0\n')
    r = run([sys.executable, 'data_prep/check_videos.py', str(tree), str(split), '--quiet'])
    assert r.returncode == 0 and '2 readable, 0 unreadable' in r.stdout, r.stdout + r.stderr[-2000:]
    assert set(read_skip_list(tree / SKIP_LIST)) == {'truncated.mp4', 'missing.mp4'}   # only the checked videos' lines change
    assert run([sys.executable, 'data_prep/check_videos.py', str(tmp_path / 'nowhere')]).returncode == 2


def _labels(d: Path) -> Path:
    (d / 'labels.txt').write_text('id,name\n0,a\n1,b\n')
    return d / 'labels.txt'
