"""Every published ViFi-CLIP label list and split file, read with `msta_core.datasets` and checked.

The checks pin down the conventions the notebook documents: class counts, label ranges, exactly-K
few-shot files, local ids in base/novel files, and ViFi-CLIP's base/novel rule (the more frequent
half of the classes is base, listed in ascending order of training-set count).
"""
import math
from collections import Counter
from pathlib import Path

import pytest

from msta_core.core import reference_data, REFERENCE_DATA
from conftest import needs
from msta_core.datasets import (Sample, read_split, read_labels, write_split, write_labels, class_counts,
                                check_labels, base_novel_split, few_shot_split, remap, VideoSplit)

VIFI = reference_data('vifi_clip_splits') or Path('/nonexistent/vifi_clip_splits')   # public data: fetched, or these tests skip
LABELS, SPLITS = VIFI / 'labels', VIFI / 'datasets_splits'
needs_vifi, needs_descriptions = needs('vifi_clip_splits'), needs('msta_descriptions')

# dataset folder -> (label list, number of classes)
FULL = {'hmdb_splits': ('hmdb_51_labels.csv', 51), 'ucf_splits': ('ucf_101_labels.csv', 101),
        'ssv2_splits': ('ssv2_labels.csv', 174), 'k400_splits': ('kinetics_400_labels.csv', 400)}
B2N = {'hmdb_splits': ('hmdb_51', 26, 25), 'ucf_splits': ('ucf_101', 51, 50),
       'ssv2_splits': ('ssv2_174', 87, 87), 'k400_splits': ('kinetics_400', 200, 200)}
# the base/novel test videos come from these full-label evaluation splits
B2N_VAL = {'hmdb_splits': 'hmdb_splits/val1.txt', 'ucf_splits': 'ucf_splits/val1.txt',
           'ssv2_splits': 'ssv2_splits/validation.txt', 'k400_splits': 'k400_splits/val.txt'}
FULL_LABELS = {'hmdb_splits': 'hmdb_51_labels.csv', 'ucf_splits': 'ucf_101_labels.csv',
               'ssv2_splits': 'ssv2_labels.csv', 'k400_splits': 'kinetics_400_labels.csv'}


def label_file_for(split: Path) -> tuple[str, int]:
    "The label list that a split file's ids refer to, and its size."
    rel = split.relative_to(SPLITS)
    if rel.parts[0] == 'k600_splits':
        n = rel.name.split('_')[1]                       # ZS_split1_K600_eval.txt -> split1
        return f'ZS_{n}_K600.csv', 160
    if rel.parts[0] == 'base2novel_splits':
        stem, n_base, n_novel = B2N[rel.parts[1]]
        return (f'{stem}_novel_labels.csv', n_novel) if rel.name.startswith('novel') else (f'{stem}_base_labels.csv', n_base)
    return FULL[rel.parts[0]]


ALL_SPLITS = sorted(SPLITS.rglob('*.txt'))
ALL_LABELS = sorted(LABELS.glob('*.csv'))


@needs_vifi
def test_inventory():
    # 47 split files and 16 label lists; the full K400 train lists are not kept here
    assert len(ALL_SPLITS) == 47 and len(ALL_LABELS) == 16
    assert not (SPLITS / 'k400_splits' / 'train.txt').exists()
    used = {label_file_for(f)[0] for f in ALL_SPLITS}
    # every label list is used by some split, except K600's full list (the zero-shot splits have their own)
    assert {f.name for f in ALL_LABELS} - used == {'kinetics_600_labels.csv'}


@needs_vifi
@pytest.mark.parametrize('f', ALL_LABELS, ids=lambda f: f.name)
def test_label_list(f):
    names = read_labels(f)
    expected = {'ZS_split1_K600.csv': 160, 'ZS_split2_K600.csv': 160, 'ZS_split3_K600.csv': 160,
                'hmdb_51_labels.csv': 51, 'hmdb_51_base_labels.csv': 26, 'hmdb_51_novel_labels.csv': 25,
                'ucf_101_labels.csv': 101, 'ucf_101_base_labels.csv': 51, 'ucf_101_novel_labels.csv': 50,
                'ssv2_labels.csv': 174, 'ssv2_174_base_labels.csv': 87, 'ssv2_174_novel_labels.csv': 87,
                'kinetics_400_labels.csv': 400, 'kinetics_400_base_labels.csv': 200,
                'kinetics_400_novel_labels.csv': 200, 'kinetics_600_labels.csv': 600}
    assert len(names) == expected[f.name]
    assert all(n and n == n.strip() for n in names)


@needs_vifi
def test_label_list_roundtrip(tmp_path):
    for f in ALL_LABELS:
        names = read_labels(f)
        write_labels(tmp_path / f.name, names)
        assert read_labels(tmp_path / f.name) == names


def test_split_file_with_byte_order_mark(tmp_path):
    "Editors on Windows start UTF-8 files with a BOM: it must not become part of the first video's path."
    f = tmp_path / 'split.txt'
    f.write_bytes('\ufeffclass a/v1.mp4 0\r\nv2.mp4 1\r\n'.encode('utf-8'))
    assert read_split(f) == [Sample('class a/v1.mp4', 0), Sample('v2.mp4', 1)]
    (tmp_path / 'class a').mkdir(); (tmp_path / 'class a' / 'v1.mp4').write_bytes(b'x'); (tmp_path / 'v2.mp4').write_bytes(b'x')
    assert VideoSplit(tmp_path, read_split(f), ['a', 'b']).missing() == []


@needs_vifi
@pytest.mark.parametrize('f', ALL_SPLITS, ids=lambda f: str(f.relative_to(SPLITS)))
def test_split_file(f, tmp_path):
    samples = read_split(f)
    label_file, n = label_file_for(f)
    names = read_labels(LABELS / label_file)
    assert len(names) == n
    check_labels(samples, n, str(f))                     # every label within [0, n)
    counts = class_counts(samples, n)
    # every split covers all classes of its label list
    assert min(counts) > 0, f"{f}: classes without videos"
    assert len({s.path for s in samples}) == len(samples), f"{f}: duplicate videos"
    if 'few_shot' in f.name:
        k = int(f.stem.split('_')[-1])
        assert counts == [k] * n
    if f.name.startswith('fs_base'):
        assert counts == [16] * n
    # write/read round trip is lossless
    write_split(tmp_path / 'x.txt', samples)
    assert read_split(tmp_path / 'x.txt') == samples


@needs_vifi
def test_k600_zero_shot_classes_are_new():
    k400, k600 = set(read_labels(LABELS / 'kinetics_400_labels.csv')), read_labels(LABELS / 'kinetics_600_labels.csv')
    new = [c for c in k600 if c not in k400]
    for s in (1, 2, 3):
        zs = read_labels(LABELS / f'ZS_split{s}_K600.csv')
        assert len(zs) == 160 and set(zs) <= set(new) and zs == sorted(zs)


@needs_vifi
@pytest.mark.parametrize('d', sorted(B2N))
def test_base_novel_conventions(d):
    stem, n_base, n_novel = B2N[d]
    full = read_labels(LABELS / FULL_LABELS[d])
    base, novel = read_labels(LABELS / f'{stem}_base_labels.csv'), read_labels(LABELS / f'{stem}_novel_labels.csv')
    # base and novel partition the classes; base is the larger half
    assert not set(base) & set(novel) and set(base) | set(novel) == set(full)
    assert len(base) == math.ceil(len(full) / 2)
    # local ids: a video in a base/novel eval file has the same class *name* as in the full eval file
    full_val = {s.path: full[s.label] for s in read_split(SPLITS / B2N_VAL[d])}
    for part, names in (('base_val', base), ('novel_val', novel)):
        ss = read_split(SPLITS / 'base2novel_splits' / d / f'{part}.txt')
        assert all(full_val[s.path] == names[s.label] for s in ss)
    # the few-shot base training sets are drawn from base_train (where it is published)
    bt_file = SPLITS / 'base2novel_splits' / d / 'base_train.txt'
    if bt_file.exists():
        bt = read_split(bt_file)
        for s in (1, 2, 3):
            assert set(read_split(SPLITS / 'base2novel_splits' / d / f'fs_base_s{s}_train.txt')) <= set(bt)
        # ViFi's rule: base = the more frequent half, listed in ascending training count (ties by global id);
        # base_train holds all training videos of the base classes, so these counts are the real ones
        glob = [Sample(s.path, full.index(base[s.label])) for s in bt]
        counts = class_counts(glob, len(full))
        assert [counts[full.index(b)] for b in base] == sorted(counts[full.index(b)] for b in base)
        got_base, _ = base_novel_split(len(full), glob)   # novel classes have 0 videos in `glob`
        assert [full[c] for c in got_base] == base


@needs_vifi
def test_hmdb_base_novel_reproduced_exactly():
    # HMDB51: 70 training videos in every class, so the rule is fully determined by class ids
    full = read_labels(LABELS / 'hmdb_51_labels.csv')
    assert class_counts(read_split(SPLITS / 'base2novel_splits/hmdb_splits/base_train.txt'), 26) == [70] * 26
    base, novel = base_novel_split(51, [Sample(f'{c}/{i}', c) for c in range(51) for i in range(70)])
    assert [full[c] for c in base] == read_labels(LABELS / 'hmdb_51_base_labels.csv')
    assert [full[c] for c in novel] == read_labels(LABELS / 'hmdb_51_novel_labels.csv')


@needs_vifi
def test_eval_splits_partition_into_base_and_novel():
    for d in ('hmdb_splits', 'ucf_splits', 'ssv2_splits', 'k400_splits'):
        full_val = read_split(SPLITS / B2N_VAL[d])
        b = read_split(SPLITS / 'base2novel_splits' / d / 'base_val.txt')
        n = read_split(SPLITS / 'base2novel_splits' / d / 'novel_val.txt')
        assert sorted(s.path for s in b + n) == sorted(s.path for s in full_val)


@needs_vifi
def test_few_shot_files_are_independent_draws():
    # ViFi-CLIP's K-shot files for different K are not nested (a documented, checked fact)
    a = set(read_split(SPLITS / 'ucf_splits/train1_few_shot_2.txt'))
    b = set(read_split(SPLITS / 'ucf_splits/train1_few_shot_4.txt'))
    assert not a <= b


@needs_vifi
def test_few_shot_split_on_real_train_file():
    bt = read_split(SPLITS / 'base2novel_splits/ucf_splits/base_train.txt')
    names = read_labels(LABELS / 'ucf_101_base_labels.csv')
    for k in (2, 4, 8, 16):
        fs = few_shot_split(bt, k, seed=0, class_names=names)
        assert class_counts(fs, 51) == [k] * 51 and set(fs) <= set(bt)
        assert few_shot_split(bt, k, seed=0, class_names=names) == fs
    with pytest.raises(ValueError, match='fewer than K=94'):
        few_shot_split(bt, 94, class_names=names)    # 'Typing' has 93 training videos


@needs_vifi
def test_remap_roundtrip_ssv2():
    full = read_labels(LABELS / 'ssv2_labels.csv')
    base = read_labels(LABELS / 'ssv2_174_base_labels.csv')
    val = read_split(SPLITS / 'ssv2_splits/validation.txt')
    ids = [full.index(b) for b in base]
    mine = remap(val, ids)
    theirs = read_split(SPLITS / 'base2novel_splits/ssv2_splits/base_val.txt')
    assert Counter(mine) == Counter(theirs)


# ---------------------------------------------------------------------------------------------
# data_prep/fetch_splits.py and data_prep/make_splits.py (no test touches the network)
import importlib.util, json, sys, urllib.error

REPO = Path(__file__).resolve().parents[1]


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / 'data_prep' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@needs_descriptions
@needs_vifi
def test_fetch_file_lists_match_the_published_files():
    fs = load_script('fetch_splits')
    assert sorted(fs.VIFI_FILES) == sorted(f.relative_to(VIFI).as_posix() for f in VIFI.rglob('*') if f.is_file())
    desc = reference_data('msta_descriptions', required=True)
    assert sorted(f.removeprefix('description/') for f in fs.DESCRIPTION_FILES) == sorted(f.name for f in desc.glob('*.json'))
    logs, videos = reference_data('msta_author_logs'), reference_data('real_videos')
    if logs: assert sorted(f.removeprefix('logs/MSTA/') for f in fs.LOG_FILES) == sorted(f.relative_to(logs).as_posix() for f in logs.rglob('*.txt'))
    if videos: assert sorted(f.rsplit('/', 1)[1] for f in fs.VIDEO_FILES) == sorted(f.name for f in videos.glob('*.mp4'))
    assert set(fs.KINDS) == {'splits', 'descriptions', 'logs', 'videos'} and {k[0] for k in fs.KINDS.values()} == set(REFERENCE_DATA)
    assert fs.raw_url(fs.VIFI_REPO, 'labels/hmdb_51_labels.csv') == \
        'https://raw.githubusercontent.com/muzairkhattak/ViFi-CLIP/main/labels/hmdb_51_labels.csv'
    assert fs.raw_url(fs.ETL_REPO, 'description/2_s_description_hmdb.json', 'master') == \
        'https://raw.githubusercontent.com/chenhaoxing/ETL4Video/master/description/2_s_description_hmdb.json'


def test_fetch_offline_error(tmp_path, monkeypatch, capsys):
    fs = load_script('fetch_splits')

    def offline(url, timeout=None):
        raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(fs.urllib.request, 'urlopen', offline)
    with pytest.raises(SystemExit, match='needs internet access'):
        fs.main(['--out', str(tmp_path), '--what', 'descriptions'])
    assert not list(tmp_path.rglob('*'))                      # nothing half-written


@needs_descriptions
def test_fetch_with_fake_server(tmp_path, monkeypatch):
    "Files are served from the local reference copy; 404 on 'main' falls back to 'master'; HTML is refused."
    fs = load_script('fetch_splits')
    asked = []

    class Resp:
        def __init__(self, data): self.data = data
        def read(self): return self.data
        def __enter__(self): return self
        def __exit__(self, *a): pass

    def fake(url, timeout=None):
        asked.append(url)
        repo_ref, _, path = url.removeprefix('https://raw.githubusercontent.com/').partition('/description/')
        if repo_ref.endswith('/main'): raise urllib.error.HTTPError(url, 404, 'Not Found', None, None)
        return Resp((reference_data('msta_descriptions', required=True) / path).read_bytes())
    monkeypatch.setattr(fs.urllib.request, 'urlopen', fake)
    got = fs.fetch(tmp_path, fs.DESCRIPTION_FILES[:2], fs.ETL_REPO, strip='description/', log=None)
    assert [g.name for g in got] == [f.removeprefix('description/') for f in fs.DESCRIPTION_FILES[:2]]
    assert json.loads(got[0].read_text()) == json.loads((reference_data('msta_descriptions', required=True) / got[0].name).read_text())
    assert asked[0].split('/')[5] == 'main' and asked[1].split('/')[5] == 'master'
    n = len(asked)
    fs.fetch(tmp_path, fs.DESCRIPTION_FILES[:2], fs.ETL_REPO, strip='description/', log=None)
    assert len(asked) == n                                     # present files are not downloaded again
    monkeypatch.setattr(fs.urllib.request, 'urlopen', lambda url, timeout=None: Resp(b'<html>rate limited</html>'))
    with pytest.raises(ValueError):
        fs.fetch(tmp_path, ['labels/hmdb_51_labels.csv'], fs.VIFI_REPO, log=None)
    assert not (tmp_path / 'labels/hmdb_51_labels.csv').exists() and not list(tmp_path.rglob('.*download*'))


def test_make_splits_cli(tmp_path):
    ms = load_script('make_splits')
    # UCF101 official lists (CRLF, as distributed)
    lists = tmp_path / 'ucfTrainTestlist'; lists.mkdir()
    (lists / 'classInd.txt').write_bytes(b'1 ApplyEyeMakeup\r\n2 YoYo\r\n')
    (lists / 'trainlist01.txt').write_bytes(b'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi 1\r\n'
                                            b'YoYo/v_YoYo_g08_c01.avi 2\r\nYoYo/v_YoYo_g09_c01.avi 2\r\nYoYo/v_YoYo_g10_c01.avi 2\r\n')
    (lists / 'testlist01.txt').write_bytes(b'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\nYoYo/v_YoYo_g01_c01.avi\r\n')
    out = tmp_path / 'ucf'
    ms.main(['ucf101', '--lists', str(lists), '--out', str(out), '--flat'])
    assert read_labels(out / 'ucf_101_labels.csv') == ['ApplyEyeMakeup', 'YoYo']
    assert read_split(out / 'val1.txt') == [Sample('v_ApplyEyeMakeup_g01_c01.avi', 0), Sample('v_YoYo_g01_c01.avi', 1)]
    ms.main(['few-shot', '--split', str(out / 'train1.txt'), '--labels', str(out / 'ucf_101_labels.csv'),
             '--k', '1', '2', '--out', str(out)])
    assert class_counts(read_split(out / 'train1_few_shot_2.txt'), 2) == [2, 2]
    with pytest.raises(ValueError, match="class 0 \\('ApplyEyeMakeup'\\) has 2 videos, fewer than K=3"):
        ms.main(['few-shot', '--split', str(out / 'train1.txt'), '--labels', str(out / 'ucf_101_labels.csv'),
                 '--k', '3', '--out', str(out)])
    ms.main(['base-novel', '--train', str(out / 'train1.txt'), '--test', str(out / 'val1.txt'), '--labels',
             str(out / 'ucf_101_labels.csv'), '--shots', '1', '--name', 'ucf_101', '--out', str(out / 'b2n')])
    # YoYo has more training videos: it is the base class; files use local ids
    assert read_labels(out / 'b2n/ucf_101_base_labels.csv') == ['YoYo']
    assert read_split(out / 'b2n/novel_val.txt') == [Sample('v_ApplyEyeMakeup_g01_c01.avi', 0)]
    assert {f.name for f in (out / 'b2n').iterdir()} == {
        'ucf_101_base_labels.csv', 'ucf_101_novel_labels.csv', 'base_train.txt', 'base_val.txt', 'novel_val.txt',
        'fs_base_s1_train.txt', 'fs_base_s2_train.txt', 'fs_base_s3_train.txt'}
    # HMDB51 with ViFi-CLIP's class order
    hm = tmp_path / 'hmdb'; hm.mkdir()
    (hm / 'kick_test_split1.txt').write_text('a.avi 1 \nb.avi 2 \n')
    (hm / 'kick_ball_test_split1.txt').write_text('c.avi 2 \nd.avi 1 \n')
    write_labels(tmp_path / 'hl.csv', ['kick ball', 'kick'])
    ms.main(['hmdb51', '--split-dir', str(hm), '--labels', str(tmp_path / 'hl.csv'), '--flat', '--out', str(tmp_path / 'h')])
    assert read_split(tmp_path / 'h/val1.txt') == [Sample('c.avi', 0), Sample('b.avi', 1)]
    # Kinetics CSV, SSv2 JSON, plain folders
    (tmp_path / 'val.csv').write_text('label,youtube_id,time_start,time_end,split\nzumba,abc,5,15,val\nabseiling,xyz,0,10,val\n')
    ms.main(['kinetics', '--csv', str(tmp_path / 'val.csv'), '--out', str(tmp_path / 'k')])
    assert read_split(tmp_path / 'k/val.txt') == [Sample('val/abc_000005_000015.mp4', 1), Sample('val/xyz_000000_000010.mp4', 0)]
    (tmp_path / 'labels.json').write_text(json.dumps({'Moving something up': '0'}))
    (tmp_path / 'something-something-v2-validation.json').write_text(json.dumps([{'id': '7', 'template': 'Moving [something] up'}]))
    ms.main(['ssv2', '--json', str(tmp_path / 'something-something-v2-validation.json'),
             '--labels-json', str(tmp_path / 'labels.json'), '--out', str(tmp_path / 's')])
    assert read_split(tmp_path / 's/validation.txt') == [Sample('7.webm', 0)]
    (tmp_path / 'vids/air drumming').mkdir(parents=True); (tmp_path / 'vids/air drumming/x 1.mp4').write_bytes(b'')
    ms.main(['folders', str(tmp_path / 'vids'), '--out', str(tmp_path / 'f')])
    assert read_split(tmp_path / 'f/all.txt') == [Sample('air drumming/x 1.mp4', 0)]
    assert read_labels(tmp_path / 'f/labels.csv') == ['air drumming']


@needs_vifi
def test_documented_counts():
    assert class_counts(read_split(SPLITS / 'hmdb_splits/val1.txt'), 51) == [30] * 51
    assert class_counts(read_split(SPLITS / 'k400_splits/train_tiny.txt'), 400) == [150] * 400
    assert len(read_split(SPLITS / 'k400_splits/val.txt')) == 19877
    assert len(read_split(SPLITS / 'ssv2_splits/validation.txt')) == 24777
    assert read_labels(LABELS / 'kinetics_400_labels.csv') == sorted(read_labels(LABELS / 'kinetics_400_labels.csv'))
