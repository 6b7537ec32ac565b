"""The README's real-data commands: they parse into the paper's rows and every row's parameters pass the checks; the
mismatches the rehearsal (benchmarks/rehearse_paper_commands.py) found stay fixed; and, with the public data here,
one row per protocol runs end to end in smoke mode against the real split files."""
import importlib.util, json, os, re, shlex, subprocess, sys
from pathlib import Path

import pytest

from conftest import needs
from msta_core.presets import config_from_params
from msta_core.sources import DATASETS

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('rehearse', ROOT / 'benchmarks' / 'rehearse_paper_commands.py')
rehearse = importlib.util.module_from_spec(spec); spec.loader.exec_module(rehearse)
params = rehearse.params


def test_the_readme_commands_are_the_papers_rows():
    block = rehearse.parse_block(rehearse.readme_block())
    protocols = [params(r.command).get('preset') or params(r.command)['protocol'] for r in block.rows]
    assert {p: protocols.count(p) for p in set(protocols)} == {'fewshot': 12, 'base2novel': 12, 'zeroshot': 1, 'supervised': 1,
                                                               'm2clip-release': 1}
    assert sum(r.written for r in block.rows) == 5 and len(block.results) == 1
    assert any('make_splits.py kinetics' in l for l in block.prepare) and any('convert_clip.py' in l for l in block.prepare)
    for r in block.rows:
        p = {k: v for k, v in params(r.command).items() if not v.startswith('$')}
        cfg = config_from_params(**{'splits_dir': 'S', 'descriptions_dir': 'D', 'checkpoint': 'CK', **p})   # every parameter checked
        assert cfg.dataset in DATASETS and cfg.nproc >= 1
    for line in [*block.assignments, *block.prepare, *(r.command for r in block.rows)]:      # paths with spaces survive
        assert not re.search(r'(?<!")\$[A-Z]', line.split('#')[0]), f'an unquoted variable: {line}'


def _k400_splits(tmp_path):
    "A splits folder with ViFi-CLIP's Kinetics-400 files but its full training list: labels and val.txt."
    sd = tmp_path / 'splits'
    (sd / 'labels').mkdir(parents=True); (sd / 'datasets_splits' / 'k400_splits').mkdir(parents=True)
    (sd / DATASETS['k400'].labels).write_text('id,name\n0,abseiling\n1,air drumming\n')
    (sd / DATASETS['k400'].test[0]).write_text('val/a_000001_000011.mp4 0\nval/b_000002_000012.mp4 1\n')
    return sd


@pytest.mark.parametrize('protocol', ['supervised', 'zeroshot'])
def test_a_missing_k400_training_list_names_how_to_get_it(tmp_path, protocol):
    sd = _k400_splits(tmp_path)
    cfg = config_from_params(protocol=protocol, dataset='k400', data_root=str(tmp_path / 'videos'), splits_dir=str(sd),
                             eval_datasets='[]' if protocol == 'zeroshot' else None, checkpoint='CK')
    with pytest.raises(FileNotFoundError) as e: DATASETS['k400'].resolve(cfg)
    msg = str(e.value)
    assert 'train.txt not found' in msg and 'python data_prep/fetch_splits.py --with-k400-train' in msg
    assert 'python data_prep/make_splits.py kinetics --csv' in msg and f"--out {sd / 'datasets_splits' / 'k400_splits'}" in msg


def test_the_readme_way_to_the_k400_training_list(tmp_path):
    "The README's make_splits line, on an official-format annotations CSV, writes the list resolve_data reads."
    sd = _k400_splits(tmp_path)
    csv = tmp_path / 'annotations' / 'train.csv'; csv.parent.mkdir()
    csv.write_text('label,youtube_id,time_start,time_end,split\nair drumming,x_y-z,5,15,train\nabseiling,abc,0,10,train\n')
    line = next(l for l in rehearse.parse_block(rehearse.readme_block()).prepare if 'make_splits.py kinetics' in l)
    line = line.replace('/data/k400/annotations/train.csv', shlex.quote(str(csv))).replace('"$S', f'"{sd}')
    subprocess.run(line, shell=True, check=True, cwd=ROOT, capture_output=True, env={**os.environ, 'PYTHONPATH': str(ROOT)})
    cfg = config_from_params(protocol='supervised', dataset='k400', data_root=str(tmp_path / 'videos'), splits_dir=str(sd), checkpoint='CK')
    data = DATASETS['k400'].resolve(cfg)
    train, evals, stem = data.train, data.evals, data.descriptions
    assert [(s.path, s.label) for s in train.samples] == [('train/x_y-z_000005_000015.mp4', 1), ('train/abc_000000_000010.mp4', 0)]
    assert stem == 'k400' and len(evals['test']) == 2


@needs('vifi_clip_splits')
@needs('msta_descriptions')
def test_one_smoke_row_per_protocol_on_the_real_split_files(tmp_path):
    "The cheapest row of each protocol, as the rehearsal runs it (minutes on 2 CPU cores: see the README's GPU section)."
    rows = ['fewshot-hmdb51-K2', 'base2novel-k400-s1', 'zeroshot-k400', 'supervised-k400', 'm2clip-release-k400']
    out = tmp_path / 'rows.json'
    p = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'rehearse_paper_commands.py'), '--only', *rows,
                        '--keep', str(tmp_path), '--json', str(out)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    done = json.loads(out.read_text())
    assert [r['row'] for r in done] == [*rows, 'results'] and all(r['ok'] for r in done)


def _words(text: str) -> set[str]:
    text = re.sub(r'([a-z])([A-Z])', r'\1 \2', text).lower()
    return {w[:5] for w in re.findall(r'[a-z]+', text) if len(w) > 2} - {'the', 'and', 'somet', 'video', 'about', 'with', 'perso',
                                                                         'peopl', 'for', 'from', 'into', 'their', 'its', 'are'}


@needs('vifi_clip_splits')
@needs('msta_descriptions')
@pytest.mark.parametrize('dataset', ['ucf101', 'hmdb51', 'ssv2', 'k400'])
def test_the_authors_descriptions_follow_the_label_lists(dataset):
    "Class i of a label list and of the descriptions the runs pair with it is one class: the temporal sentences name it."
    from msta_core.core import reference_data
    from msta_core.datasets import read_labels
    from msta_core.descriptions import author_description_files, load_author_descriptions
    sd, dd, spec = reference_data('vifi_clip_splits'), reference_data('msta_descriptions'), DATASETS[dataset]
    for labels, stem in [(spec.labels, spec.descriptions), (spec.base_novel_labels()[0], spec.descriptions + '_base')]:
        names = read_labels(sd / labels)
        desc = load_author_descriptions(author_description_files(dd, stem, 2)[1])
        assert len(desc) == len(names)
        said, words = [_words(' '.join(desc[i])) for i in range(len(names))], [_words(n) for n in names]
        def named(shift):                     # classes whose sentences fit their own name best of all the names
            fits = 0
            for i in range(len(names)):
                overlap = [len(w & said[(i + shift) % len(names)]) for w in words]
                fits += overlap[i] > 0 and overlap[i] == max(overlap)
            return fits
        assert named(0) >= 0.8 * len(names) and named(1) < 0.2 * len(names), (labels, stem, named(0), named(1))


def test_papermill_reads_every_parameter_of_train_ipynb():
    "papermill reads each line of train.ipynb's parameters cell as a parameter (a second '=' in a comment once hid `scale`)."
    from papermill.translators import PythonTranslator
    cell = next(c for c in json.loads((ROOT / 'nbs' / 'train.ipynb').read_text())['cells']
                if 'parameters' in c.get('metadata', {}).get('tags', []))
    source = ''.join(cell['source'])
    names = [m.group(1) for m in re.finditer(r'^(\w+) = ', source, re.M)]
    assert [p.name for p in PythonTranslator.inspect({'source': source})] == names and {'scale', 'smoke'} <= set(names)


@needs('vifi_clip_splits')
def test_k600_zero_shot_classes_are_none_of_k400s():
    "Each zero-shot K-600 split's 160 classes are new to a model trained on K-400 (names compared case-insensitively)."
    from msta_core.core import reference_data
    from msta_core.datasets import read_labels
    sd = reference_data('vifi_clip_splits')
    k400 = {n.lower() for n in read_labels(sd / DATASETS['k400'].labels)}
    for i in (1, 2, 3):
        names = read_labels(sd / DATASETS['k600'].labels.format(split=i))
        assert len(names) == 160 and not {n.lower() for n in names} & k400
