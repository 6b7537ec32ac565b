"""The public third-party data is reached through `msta_core.core.reference_data` only.

A lesson or test that opens `../shared/...` or reads `$MSTA_SHARED` itself works on a machine where the data sits
beside the repository and fails (or silently tests less) in a fresh clone, which has neither. This check reads the
code cells of every notebook and every script and test, and fails on any line that names the `shared` folder or the
`MSTA_SHARED` variable outside the few places whose job that is."""
import json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Where naming the folder or the variable is the point, and why.
ALLOWED = {
    'nbs/00_core.ipynb': 'defines reference_data (and tests its search order)',
    'msta_core/core.py': 'exported from 00_core',
    'tests/conftest.py': "the skip reason tells the user to set MSTA_SHARED",
    'tests/test_notebooks.py': 'points MSTA_SHARED at an empty folder to run lessons as a fresh clone does',
    'tests/test_reference_data_paths.py': 'this check',
}
PATTERN = re.compile(r"""MSTA_SHARED|shared[/\\]|/\s*['"]shared['"]""")   # the variable, a path into shared/, a join onto it


def code_lines(path: Path):
    "(line number or cell:line, text) of the code in a notebook's code cells or a Python file."
    if path.suffix == '.ipynb':
        for i, cell in enumerate(json.loads(path.read_text(encoding='utf-8'))['cells']):
            if cell['cell_type'] == 'code':
                for j, line in enumerate(''.join(cell['source']).splitlines(), 1): yield f'cell {i}, line {j}', line
    else:
        for j, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1): yield f'line {j}', line


def offending(path: Path) -> list[str]:
    return [f'{path.relative_to(ROOT)} {where}: {line.strip()}' for where, line in code_lines(path)
            if PATTERN.search(line) and not line.lstrip().startswith('#')]


def sources():
    for pattern in ('nbs/*.ipynb', 'msta_core/*.py', 'tests/*.py', 'benchmarks/*.py', 'data_prep/*.py'):
        yield from (p for p in sorted(ROOT.glob(pattern)) if p.relative_to(ROOT).as_posix() not in ALLOWED)


def test_public_data_only_through_reference_data():
    found = [line for p in sources() for line in offending(p)]
    assert not found, ("these lines reach the public data's folder or $MSTA_SHARED themselves; use "
                       "msta_core.core.reference_data(name) (it finds data/, $MSTA_SHARED/data or shared/data, and "
                       "returns None when the data is absent):\n  " + '\n  '.join(found))


def test_the_check_sees_what_it_looks_for(tmp_path):
    bad = ROOT / 'tests' / f'_probe_{tmp_path.name}.py'
    bad.write_text("import os\nroot = os.environ.get('MSTA_SHARED')\nclip = '../shared/data/real_videos/bikes.mp4'\n"
                   "logs = repo.parent / 'shared' / 'data'\n# a comment may mention shared/ freely\n"
                   "fine = reference_data('real_videos'); layer = {'shared': 1}\n")
    try: assert [l.split(': ', 1)[0].rsplit(' ', 2)[-2:] for l in offending(bad)] == [['line', '2'], ['line', '3'], ['line', '4']]
    finally: bad.unlink()
    assert set(ALLOWED) <= {p.relative_to(ROOT).as_posix() for p in ROOT.glob('*/*') if p.is_file()}, \
        'an allowed file no longer exists: remove it from ALLOWED'
