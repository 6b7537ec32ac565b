"""Every library notebook is also a test: run it (as `nbdev_test` does) in a fresh interpreter.

Also checks that the exported package is exactly what the notebooks export."""
import filecmp, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / 'nbs').glob('[0-9][0-9]*_*.ipynb'))   # 02b_clip too

RUN = """
import sys
from pathlib import Path
from nbdev.test import test_nb
ok, secs = test_nb(Path(sys.argv[1]), skip_flags=['notest', 'slow'], showerr=True)
print(f'{sys.argv[1]}: {"ok" if ok else "FAILED"} in {secs:.1f}s')
sys.exit(0 if ok else 1)
"""


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb):
    r = subprocess.run([sys.executable, '-c', RUN, str(nb)], capture_output=True, text=True, cwd=ROOT, timeout=1500)
    assert r.returncode == 0, f'{nb.name} failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}'


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
