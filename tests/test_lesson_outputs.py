"""The outputs stored in the lessons are current and small.

`python book/run_lessons.py` runs the lessons and stores their outputs, with a fingerprint (sha256) of the code
cells that made them in each notebook's metadata (`msta_outputs`). A lesson whose code cells changed since then
shows outputs its code no longer makes: the test names it and the command that regenerates it.

`REQUIRE_STORED_OUTPUTS` says whether every lesson must have stored outputs. While it is False, a lesson may still
be stored without outputs (as `nbdev_clean` leaves it), and only stored outputs are checked: made by the command,
current, small."""
import base64, importlib.util, io, json, os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('msta_run_lessons', ROOT / 'book' / 'run_lessons.py')
rl = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(rl)

# Every lesson is committed with its outputs: True makes a lesson without them fail.
REQUIRE_STORED_OUTPUTS = True


@pytest.mark.parametrize('nb', rl.LESSONS, ids=[p.stem for p in rl.LESSONS])
def test_stored_outputs_are_current(nb):
    msgs = rl.problems(nb, required=REQUIRE_STORED_OUTPUTS)
    assert not msgs, '\n'.join(msgs)


def test_stored_outputs_are_small():
    sizes = {p.stem: rl.stored_bytes(rl.read(p)) for p in rl.LESSONS}
    total = sum(sizes.values())
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    assert total < rl.MAX_TOTAL_BYTES, (f'the lessons\' stored outputs take {total / 1e6:.1f} MB, more than '
                                        f'{rl.MAX_TOTAL_BYTES / 1e6:.0f} MB; largest: {largest}')


def test_experiment_notebooks_keep_no_outputs():
    "papermill clears them when it runs; what a run shows is in the notebook it writes (runs/*.ipynb)."
    with_outputs = [p.name for p in rl.EXPERIMENTS if p.exists() and rl.outputs_of(rl.read(p))]
    assert not with_outputs, f'{with_outputs} hold outputs: clear them with `nbdev_clean --clear_all --fname ...`'


# ------------------------------------------------------------------------------------- the command on a toy lesson
def _toy(path: Path):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'python3', 'language': 'python'}
    code = nbformat.v4.new_code_cell
    nb.cells = [nbformat.v4.new_markdown_cell('# A toy lesson\n\nIts outputs are stored.'),
                code('#| default_exp toy'),
                code('import matplotlib.pyplot as plt\nfrom tqdm.auto import tqdm\nplt.plot([1, 3, 2])'),
                code('fig, ax = plt.subplots(figsize=(2, 2)); ax.plot([1, 2]); fig'),
                code('for i in tqdm(range(3)): pass\nprint("step 1\\rstep 2\\rdone")\n6 * 7'),
                code('#| notest\nprint("not run by the tests")'),
                code('#| data\nprint("needs the public data")'),
                code('#| hide\nx = {"b": 1, "a": 2}; x')]
    nb.cells[2].outputs = [nbformat.v4.new_output('stream', text='an output of an earlier run\n')]
    nb.cells[5].outputs = [nbformat.v4.new_output('stream', text='an output of an earlier run\n')]
    nbformat.write(nb, str(path))


def _run(path: Path):
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    r = subprocess.run([sys.executable, str(ROOT / 'book' / 'run_lessons.py'), '--worker', str(path), '0'],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]


def test_regenerate_a_toy_lesson(tmp_path):
    path = tmp_path / '99_toy.ipynb'
    _toy(path)
    assert rl.problems(path) and 'has outputs that were not made by' in rl.problems(path)[0]
    _run(path)
    nb = rl.read(path)
    code = [c for c in nb['cells'] if c['cell_type'] == 'code']
    kinds = [[(o['output_type'], sorted(o.get('data', {}))) for o in c.get('outputs', [])] for c in code]
    png = [('display_data', ['image/png', 'text/plain'])]
    assert kinds[0] == []                                    # default_exp
    assert kinds[1] == png, kinds[1]                         # the figure, without `[<matplotlib.lines.Line2D ...>]`
    assert kinds[2] == png, kinds[2]                         # returned and flushed: shown once
    assert kinds[3] == [('stream', []), ('execute_result', ['text/plain'])], kinds[3]
    assert ''.join(code[3]['outputs'][0]['text']) == 'done\n'     # no progress bar, only what a terminal keeps
    assert kinds[4] == [] and kinds[5] == []                 # `#| notest`, and `#| data` without the data: not run
    assert kinds[6] == [('execute_result', ['text/plain'])]  # hidden cells run
    assert all(c['execution_count'] is None for c in code)
    assert all(o.get('execution_count') is None for c in code for o in c['outputs'])
    img = base64.b64decode(code[1]['outputs'][0]['data']['image/png'])
    from PIL import Image
    assert Image.open(io.BytesIO(img)).size[0] <= 700, 'a 6.4-inch figure at 100 dpi (not doubled for retina)'
    assert nb['metadata'][rl.META_KEY] == {'code_sha256': rl.code_fingerprint(nb), 'public_data': False}
    assert rl.problems(path) == []

    # nbdev_clean keeps the outputs and the fingerprint, and changes nothing else
    before = path.read_bytes()
    r = subprocess.run([str(Path(sys.executable).parent / 'nbdev_clean'), '--fname', str(path)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert path.read_bytes() == before

    # a second run stores the same bytes
    _run(path)
    assert path.read_bytes() == before

    # a changed code cell makes them stale; a changed markdown cell does not
    nb['cells'][0]['source'] = '# A toy lesson\n\nIts prose changed.'
    path.write_text(json.dumps(nb))
    assert rl.problems(path) == []
    nb['cells'][3]['source'] = 'fig, ax = plt.subplots(figsize=(2, 2)); ax.plot([2, 1]); fig'
    path.write_text(json.dumps(nb))
    msgs = rl.problems(path)
    assert len(msgs) == 1 and '99_toy.ipynb' in msgs[0] and 'stale' in msgs[0], msgs
    assert f'{rl.COMMAND} 99_toy' in msgs[0]


def test_a_large_figure_is_named(tmp_path):
    path = tmp_path / '99_big.ipynb'
    _toy(path)
    nb = rl.read(path)
    nb['cells'] = [c for c in nb['cells'] if c['cell_type'] == 'markdown'] + [{
        'cell_type': 'code', 'execution_count': None, 'id': 'big', 'metadata': {}, 'source': 'plot()',
        'outputs': [{'output_type': 'display_data', 'metadata': {},
                     'data': {'image/png': base64.b64encode(b'\0' * 250_000).decode(), 'text/plain': 'big'}}]}]
    nb['metadata'][rl.META_KEY] = {'code_sha256': rl.code_fingerprint(nb), 'public_data': False}
    path.write_text(json.dumps(nb))
    msgs = rl.problems(path)
    assert len(msgs) == 1 and '99_big.ipynb, code cell 1' in msgs[0] and '250 KB' in msgs[0], msgs


def test_missing_outputs_when_required(tmp_path):
    path = tmp_path / '99_toy.ipynb'
    _toy(path)
    nb = rl.read(path)
    for c in nb['cells']: c['outputs'] = [] if c['cell_type'] == 'code' else c.get('outputs')
    for c in nb['cells']:
        if c['cell_type'] == 'markdown': c.pop('outputs', None)
    path.write_text(json.dumps(nb))
    assert rl.problems(path, required=False) == []
    msgs = rl.problems(path, required=True)
    assert len(msgs) == 1 and 'has no stored outputs' in msgs[0] and f'{rl.COMMAND} 99_toy' in msgs[0]
