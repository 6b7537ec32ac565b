"""Slower checks of the synthetic world and of data_prep's video scripts: determinism across runs,
resuming after a crash, decodability with decord, and the CLIs."""
import importlib.util, json, shutil, subprocess, sys
from pathlib import Path

import decord
import numpy as np
import pytest

import msta_core.world as world_mod
from msta_core.synthetic import render_clip, COLOURS
from msta_core.video import encode_mp4
from msta_core.world import generate_world, WorldConfig
from msta_core.datasets import read_labels, read_split, class_counts

REPO = Path(__file__).resolve().parents[1]
TINY = dict(videos_per_class=2, pretrain_per_class=1, test_per_class=1, zeroshot_per_class=1, val_per_class=1, shots=(1, 2),
            base_shots=2, descriptions=(2,))
N_TINY = 120 * 1 + 160 * 1 + 40 * 4 + 40 * 1        # pre-training, compositions, actions (train, test, val), colours


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / 'data_prep' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod                      # so that process pools can pickle its functions
    spec.loader.exec_module(mod)
    return mod


def tables(root: Path) -> dict:
    "Every non-video file of a world, as bytes."
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file() and p.relative_to(root).parts[0] != 'videos'}


def decode(path) -> np.ndarray:
    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(len(vr)))).asnumpy()


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    return generate_world(tmp_path_factory.mktemp('w') / 'world', seed=0, workers=2, **TINY)


def test_determinism(world, tmp_path):
    other = generate_world(tmp_path / 'again', seed=0, workers=1, **TINY)   # other worker count, same world
    assert other.videos_digest == world.videos_digest and other.heldout == world.heldout
    a, b = tables(world.root), tables(other.root)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)            # byte-identical labels, splits, ...
    for rel in (read_split(world.root / 'splits/pretrain_train.txt')[0].path,
                read_split(world.root / 'splits/actions_test.txt')[-1].path):
        assert (decode(world.root / rel) == decode(other.root / rel)).all()
    third = generate_world(tmp_path / 'seed1', seed=1, workers=2, **TINY)
    assert third.videos_digest != world.videos_digest and third.heldout != world.heldout


def test_manifest_and_files(world):
    m = json.loads((world.root / 'world.json').read_text())
    assert m['n_videos'] == N_TINY == len(m['videos']) == world.n_videos
    assert not (world.root / '.generating.json').exists()
    assert not list(world.root.rglob('*.tmp'))
    for rel, sha in m['files'].items():
        assert world_mod._sha(world.root / rel) == sha
    assert len(list((world.root / 'videos').rglob('*.mp4'))) == N_TINY
    # authors' description format: "{N}_{s|t}_description_{dataset}.json", "0".."n-1" -> N sentences
    for f in (world.root / 'descriptions').glob('*.json'):
        d = json.loads(f.read_text())
        n = int(f.name.split('_')[0])
        assert list(d) == [str(i) for i in range(len(d))] and all(len(v) == n for v in d.values())
    names = {f.name for f in (world.root / 'descriptions').glob('*.json')}
    assert names == {f'2_{k}_description_synth_{d}.json' for k in 'st'
                     for d in ('actions', 'actions_base', 'actions_novel', 'compositions')}


def test_splits(world):
    comps = read_labels(world.root / 'labels/synth_compositions_labels.csv')
    assert len(comps) == 160 and comps == world.compositions
    pre = read_split(world.root / 'splits/pretrain_train.txt')
    assert sorted({s.label for s in pre}) == sorted(set(range(160)) - set(world.heldout))
    zs, unseen = world.split('zeroshot'), world.split('zeroshot_unseen')
    assert zs.counts() == [1] * 160 and {s.label for s in unseen.samples} == set(world.heldout)
    assert len(world.split('zeroshot_seen')) + len(unseen) == len(zs)
    # no pre-training video is a test video
    assert not {s.path for s in pre} & {s.path for s in zs.samples}
    acts = world.split('actions_train')
    assert acts.class_names == world.actions and acts.counts() == [2] * 40
    assert set(world.split('actions_1shot').samples) <= set(acts.samples)
    base = read_labels(world.root / 'labels/synth_actions_base_labels.csv')
    novel = read_labels(world.root / 'labels/synth_actions_novel_labels.csv')
    assert base == [world.actions[i] for i in world.base] and novel == [world.actions[i] for i in world.novel]
    assert not set(base) & set(novel) and len(base) + len(novel) == 40
    # base/novel files use local ids, like ViFi-CLIP's
    test = world.split('actions_test')
    name_of = {s.path: world.actions[s.label] for s in test.samples}
    nv = world.split('novel_val')
    assert nv.counts() == [1] * 20 and all(name_of[s.path] == novel[s.label] for s in nv.samples)
    assert class_counts(world.split('fs_base_s3').samples, 20) == [2] * 20
    # videos.csv: every video's factors, consistent with its class name
    rows = (world.root / 'videos.csv').read_text().splitlines()
    assert rows[0] == 'path,split,label,shape,colour,motion,domain' and len(rows) == N_TINY + 1
    colours = read_labels(world.root / 'labels/synth_colours_labels.csv')
    for r in rows[1:]:
        path, split, label, shape, colour, motion, domain = r.split(',')
        assert domain == ('plain' if split == 'pretrain' else 'shifted')
        if split.startswith('actions'):
            assert world.actions[int(label)] == f'a {shape} {motion}' and colour in COLOURS
        elif split == 'colours_test':
            assert colours[int(label)] == f'a {colour} shape {motion}'
        else:
            assert world.compositions[int(label)] == f'a {colour} {shape} {motion}'


def test_videos_decode_and_keep_colours(world):
    # decoded frames match the rendered ones closely, colours included
    rows = [r.split(',') for r in (world.root / 'videos.csv').read_text().splitlines()[1:]]
    for path, split, label, shape, colour, motion, domain in rows[::37]:
        vr = decord.VideoReader(str(world.root / path))
        assert len(vr) == 16 and vr[0].shape == (32, 32, 3)
        seed = [0, world_mod._SPLIT_CODES[split], int(label), int(Path(path).stem.rsplit('_', 1)[1])]
        ref = render_clip(shape, colour, motion, np.random.default_rng(seed), 32, 16, domain=domain)
        got = decode(world.root / path)
        assert np.abs(got.astype(int) - ref.astype(int)).mean() < 3
        # the shape's pixels (where the reference is close to the class colour) keep that colour
        target = np.array(COLOURS[colour])
        mask = np.abs(ref.astype(int) - target).max(-1) < 40
        if mask.sum() > 20:
            assert np.abs(got[mask].astype(int).mean(0) - ref[mask].astype(int).mean(0)).max() < 12


def test_idempotent_and_config_change(world, tmp_path):
    again = generate_world(world.root, seed=0, workers=2, **TINY)
    assert again.seconds == 0 and again.videos_digest == world.videos_digest
    assert world_mod.load_world(world.root) == again              # the manifest's configuration round-trips
    with pytest.raises(FileNotFoundError, match='no world.json'):
        world_mod.load_world(tmp_path)
    root = tmp_path / 'change'
    generate_world(root, seed=0, workers=2, **TINY)
    bigger = generate_world(root, seed=0, workers=2, **{**TINY, 'test_per_class': 2})   # another config: remade
    assert bigger.n_videos == N_TINY + 40 + 40 and bigger.seconds > 0     # one more actions and colours test video per class
    assert read_split(root / 'splits/actions_test.txt')[1].path.endswith('_001.mp4')


def test_resume_after_crash(world, tmp_path, monkeypatch):
    root = tmp_path / 'crash'
    calls = {'n': 0}
    real = world_mod.encode_mp4

    def flaky(*a, **k):
        calls['n'] += 1
        if calls['n'] > 50: raise KeyboardInterrupt('simulated kill')
        return real(*a, **k)

    monkeypatch.setattr(world_mod, 'encode_mp4', flaky)
    with pytest.raises(KeyboardInterrupt):
        generate_world(root, seed=0, workers=1, **TINY)
    assert (root / '.generating.json').exists() and not (root / 'world.json').exists()
    assert len(list((root / 'videos').rglob('*.mp4'))) == 50
    (root / 'videos/stray.mp4.x.tmp').write_bytes(b'half')        # a temp file left by a hard kill
    monkeypatch.setattr(world_mod, 'encode_mp4', real)
    done = generate_world(root, seed=0, workers=2, **TINY)
    assert done.seconds > 0 and done.videos_digest == world.videos_digest
    assert not (root / '.generating.json').exists() and not list(root.rglob('*.tmp'))
    a, b = tables(world.root), tables(root)
    assert all(a[k] == b[k] for k in a) and a.keys() == b.keys()


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / 'mine.txt').write_text('user data')
    with pytest.raises(FileExistsError, match='no world.json'):
        generate_world(tmp_path, seed=0, **TINY)
    assert (tmp_path / 'mine.txt').read_text() == 'user data'


def test_config_validation():
    with pytest.raises(ValueError, match='multiple of 32'):
        WorldConfig(size=48)
    with pytest.raises(ValueError, match='few-shot K'):
        WorldConfig(videos_per_class=8)                          # 16-shot splits need 16 videos


def test_mpeg4_fallback(tmp_path):
    clip = render_clip('bar', 'green', 'moving up', np.random.default_rng(0), 64, 16)
    (tmp_path / 'm.mp4').write_bytes(encode_mp4(clip, codec='mpeg4'))
    got = decode(tmp_path / 'm.mp4')
    assert got.shape == clip.shape and np.abs(got.astype(int) - clip.astype(int)).mean() < 6


def test_make_synthetic_cli(tmp_path):
    mod = load_script('make_synthetic')
    info = mod.main([str(tmp_path / 'w'), '--videos-per-class', '16', '--pretrain-per-class', '1',
                     '--test-per-class', '1', '--workers', '2', '--quiet'])
    c = info.config
    assert info.n_videos == 120 + 160 * c.zeroshot_per_class + 40 * (17 + c.val_per_class) + 40
    assert class_counts(read_split(tmp_path / 'w/splits/actions_train_few_shot_16.txt'), 40) == [16] * 40


def test_resize_videos(tmp_path):
    rv = load_script('resize_videos')
    src = tmp_path / 'src'
    (src / 'a class').mkdir(parents=True)
    wide = np.concatenate([render_clip('circle', 'red', 'growing', np.random.default_rng(0), 64, 12)] * 2, axis=2)
    (src / 'a class' / 'v 1.mp4').write_bytes(encode_mp4(np.ascontiguousarray(wide), fps=8))     # 128x64
    (src / 'small.mp4').write_bytes(encode_mp4(render_clip('ring', 'blue', 'fading in', np.random.default_rng(1), 32, 8)))
    (src / 'broken.avi').write_bytes(b'not a video')
    stats = rv.resize_tree(src, tmp_path / 'dst', short=32, workers=2, log=None)
    assert stats['found'] == 3 and stats['resized'] == 2 and [Path(p).name for p, _ in stats['failed']] == ['broken.avi']
    vr = decord.VideoReader(str(tmp_path / 'dst/a class/v 1.mp4'))
    assert len(vr) == 12 and vr[0].shape == (32, 64, 3) and abs(vr.get_avg_fps() - 8) < 1e-6
    assert (tmp_path / 'dst/small.mp4').read_bytes() == (src / 'small.mp4').read_bytes()    # already small: copied
    assert not list((tmp_path / 'dst').rglob('.*part*'))
    again = rv.resize_tree(src, tmp_path / 'dst', short=32, workers=1, log=None)
    assert again['skipped'] == 2 and again['resized'] == 0
    assert rv.out_size(640, 480, 320) == (426, 320) and rv.out_size(480, 640, 320) == (320, 426)
    assert rv.out_size(300, 200, 320) == (300, 200)


@pytest.mark.parametrize('backend', ['pyav', 'ffmpeg'])
def test_resize_videos_gop(tmp_path, backend):
    "`gop=8`: a key frame every 8 frames, small videos re-encoded too; without it the encoder's default, small ones copied."
    if backend == 'ffmpeg' and not shutil.which('ffmpeg'): pytest.skip('no ffmpeg program on PATH')
    import av
    rv = load_script('resize_videos')
    frames = render_clip('circle', 'red', 'growing', np.random.default_rng(0), 64, 36)
    (tmp_path / 'src').mkdir()
    (tmp_path / 'src' / 'big.mp4').write_bytes(encode_mp4(frames, fps=8))                      # 64x64, 36 frames
    (tmp_path / 'src' / 'small.mp4').write_bytes(encode_mp4(np.ascontiguousarray(frames[:, :32, :32]), fps=8))
    def keyframes(path):
        with av.open(str(path)) as c: return [i for i, f in enumerate(c.decode(video=0)) if f.key_frame]
    for gop in (8, None):
        dst = tmp_path / f'dst{gop}'
        stats = rv.resize_tree(tmp_path / 'src', dst, short=32, workers=1, backend=backend, log=None, gop=gop)
        assert stats['resized'] == 2 and not stats['failed']
        assert decord.VideoReader(str(dst / 'big.mp4'))[0].shape == (32, 32, 3)
        if gop:
            for name in ('big.mp4', 'small.mp4'):                    # no stretch longer than 8 frames without one
                k = keyframes(dst / name)
                assert k[0] == 0 and max(np.diff(k + [36])) <= 8, (name, k)
        else:
            assert keyframes(dst / 'big.mp4') == [0]
            assert (dst / 'small.mp4').read_bytes() == (tmp_path / 'src' / 'small.mp4').read_bytes()   # copied


@pytest.mark.parametrize('script', ['make_synthetic', 'fetch_splits', 'resize_videos', 'make_splits'])
def test_help(script):
    r = subprocess.run([sys.executable, str(REPO / 'data_prep' / f'{script}.py'), '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and 'usage' in r.stdout
