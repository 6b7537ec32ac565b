"""Run the lessons and store their outputs in the notebooks, as GitHub, JupyterLab and the book show them.

    python book/run_lessons.py                    # every lesson (nbs/[0-9]*.ipynb)
    python book/run_lessons.py 06_msta 09_losses  # some of them
    python book/run_lessons.py --stale -j 2       # only those whose code changed since (two at a time)
    python book/run_lessons.py --check            # only say which lessons' stored outputs are stale, missing or
                                                  # too large (exit 1 if any)

Each lesson runs as `nbdev_test` runs it: in a fresh interpreter, through execnb's `CaptureShell`, from `nbs/`,
cells flagged `#| notest` or `#| slow` skipped, cells flagged `#| data` run only when `reference_data` finds the
public data. The outputs of every cell are replaced by this run's (a skipped cell keeps none), figures are PNG, and
what changes from run to run or from machine to machine is left out: execution counts, memory addresses in reprs
(`nbdev_clean`), progress bars (tqdm is switched off; a carriage return keeps only what a terminal would show), the
folders in a warning's file name (`torch/jit/_trace.py:1006: FutureWarning: ...`), the names of temporary files
(a folder of their own under the system's, the same names on every run). A figure is shown once (not
again as the cell's value, nor with the plotting call's `[<matplotlib.lines.Line2D ...>]`). Any other output that
shows a folder of this machine is named in a warning, for the lesson to avoid. The notebook's metadata records
`msta_outputs`: the sha256 of its code cells' sources (`code_sha256`), which `tests/test_lesson_outputs.py` compares
with the code now in the notebook, and whether the public data was found (`public_data`).

The experiment notebooks (`train`, `pretrain`, `results`) are papermill templates (`skip_exec`): papermill clears
their outputs when it runs them, and what they show is what a run writes (`runs/*.ipynb`), so they are kept without
outputs.
"""
from __future__ import annotations

import argparse, base64, hashlib, json, os, re, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
LESSONS = sorted(NBS.glob('[0-9][0-9]*_*.ipynb'))
EXPERIMENTS = [NBS / f'{n}.ipynb' for n in ('train', 'pretrain', 'results')]
META_KEY = 'msta_outputs'
COMMAND = 'python book/run_lessons.py'
MAX_FIGURE_BYTES = 200 * 1000           # one image output, decoded
MAX_TOTAL_BYTES = 15 * 1000 * 1000      # every lesson's stored outputs together, as stored (JSON)
SKIP_FLAGS = ('notest', 'slow')         # settings.ini's tst_flags: never run by the test suite
FIGURE_DPI = 100


# ---------------------------------------------------------------------------------------------- reading, checking
def read(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding='utf-8'))


def _src(cell) -> str:
    s = cell.get('source', '')
    return s if isinstance(s, str) else ''.join(s)


def code_fingerprint(nb: dict) -> str:
    "sha256 of the notebook's code cells' sources, in order: what the stored outputs were made from."
    h = hashlib.sha256()
    for c in nb['cells']:
        if c['cell_type'] == 'code': h.update(_src(c).encode('utf-8') + b'\0')
    return h.hexdigest()


def outputs_of(nb: dict) -> list:
    return [o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]


def stored_bytes(nb: dict) -> int:
    "Size of the stored outputs as written in the file (nbdev writes JSON with indent=1)."
    return sum(len(json.dumps(c.get('outputs', []), indent=1, ensure_ascii=False).encode('utf-8'))
               for c in nb['cells'] if c['cell_type'] == 'code' and c.get('outputs'))


def figures(nb: dict):
    "(code cell number, mime type, decoded bytes) of every image output."
    n = 0
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        n += 1
        for o in c.get('outputs', []):
            for mime, data in o.get('data', {}).items():
                if not mime.startswith('image/'): continue
                data = data if isinstance(data, str) else ''.join(data)
                size = len(data.encode('utf-8')) if mime == 'image/svg+xml' else len(base64.b64decode(data))
                yield n, mime, size


def current(path: Path) -> bool:
    "The lesson's stored outputs were made from its code cells as they are now."
    nb = read(path)
    return nb.get('metadata', {}).get(META_KEY, {}).get('code_sha256') == code_fingerprint(nb)


def problems(path: Path, required: bool = True) -> list[str]:
    """What is wrong with a lesson's stored outputs: missing (when `required`), stale, or a figure too large.
    Empty when they are current."""
    nb, name = read(path), Path(path).name
    meta = nb.get('metadata', {}).get(META_KEY)
    out = []
    if meta is None:
        if required or outputs_of(nb):
            why = ('has outputs that were not made by the regenerate command' if outputs_of(nb)
                   else 'has no stored outputs')
            out.append(f'{name} {why}: run `{COMMAND} {Path(path).stem}` and commit the notebook')
    elif meta.get('code_sha256') != code_fingerprint(nb):
        out.append(f'{name}: stored outputs are stale (its code cells changed since they were made): '
                   f'run `{COMMAND} {Path(path).stem}` and commit the notebook')
    for cell, mime, size in figures(nb):
        if size > MAX_FIGURE_BYTES:
            out.append(f'{name}, code cell {cell}: a {mime} output of {size / 1000:.0f} KB (at most '
                       f'{MAX_FIGURE_BYTES // 1000} KB): make the figure smaller or lower its dpi')
    return out


# --------------------------------------------------------------------------------------------------- running one
WORKER_ENV = {'TQDM_DISABLE': '1', 'PYTHONHASHSEED': '0', 'IN_TEST': '1', 'MPLBACKEND': 'agg'}


def _clean_stream(text: str) -> str:
    "What a terminal shows: on each line, only the text after its last carriage return (a progress bar's last state)."
    lines = [l.rstrip('\r') for l in text.split('\n')]
    return '\n'.join(l.rsplit('\r', 1)[-1] for l in lines)


_ARTIST = r'<matplotlib\.[\w.]+(?: object)?(?: at 0x[0-9a-fA-F]+)?>'
_ARTIST_REPR = re.compile(rf'^(\[?{_ARTIST}(?:, {_ARTIST})*\]?|\[?Text\(.*\)\]?)$', re.S)


def _tidy(outs: list) -> list:
    """A figure shown once: a cell that ends with `fig` (or `plt.plot(...)`) makes Jupyter show the figure twice (the
    cell's value and the inline backend's flush), or the figure and the plotting call's return value
    (`[<matplotlib.lines.Line2D at 0x...>]`). Keep the figure, drop the duplicate or the artist's repr."""
    shown = [o['data'][m] for o in outs if o.get('output_type') == 'display_data'
             for m in o.get('data', {}) if m.startswith('image/')]
    if not shown: return outs

    def dup(o):
        if o.get('output_type') != 'execute_result': return False
        d = o.get('data', {})
        images = [d[m] for m in d if m.startswith('image/')]
        if images: return all(i in shown for i in images)
        return set(d) == {'text/plain'} and bool(_ARTIST_REPR.match(''.join(d['text/plain']).strip()))
    return [o for o in outs if not dup(o)]


def _leaks(text: str) -> list[str]:
    "Folders of this machine in an output (temporary files are named the same on every run, so they may show)."
    roots = {str(ROOT), sys.prefix, str(Path.home())}
    return sorted(r for r in roots if len(r) > 1 and r in text)


def _short(filename: str) -> str:
    "A warning's file without this machine's folders: `torch/jit/_trace.py`, `msta_core/video.py`."
    import site, sysconfig
    f = str(filename)
    if f.startswith('<ipython-input-'): return '<cell>'
    for d in sorted({sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib'], *site.getsitepackages(),
                     str(ROOT)}, key=len, reverse=True):
        if f.startswith(d.rstrip(os.sep) + os.sep): return f[len(d.rstrip(os.sep)) + 1:]
    return f


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f'{_short(filename)}:{lineno}: {category.__name__}: {message}\n'


def run_one(path: Path, with_data: bool) -> list[str]:
    "Run one lesson here (call in a fresh interpreter) and write its outputs into it. Returns warnings."
    from execnb.nbio import nb2str
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.process import NBProcessor

    os.environ.update(WORKER_ENV)
    path = Path(path).resolve()
    raw = read(path)
    run = NBProcessor(path, procs=FrontmatterProc, process=True).nb    # directives parsed and removed, as nbdev_test
    if str(getattr(run, 'frontmatter_', {}).get('skip_exec', False)).lower() == 'true':
        raise SystemExit(f'{path.name} is marked skip_exec (a papermill experiment): it keeps no stored outputs')
    for c in run.cells:
        if c.cell_type == 'code': c.outputs = []                        # this run's outputs only
    skip = set(SKIP_FLAGS) | (set() if with_data else {'data'})

    def _no_eval(cell):
        if cell.cell_type != 'code': return True
        if 'nbdev_export' + '(' in cell.source: return True
        d = getattr(cell, 'directives_', {}) or {}
        if d.get('eval:', [''])[0].lower() == 'false': return True
        return bool(skip & d.keys())

    import random, shutil, warnings
    warnings.formatwarning = _format_warning          # a warning names its file without this machine's folders
    # Temporary files in a folder of their own, with the same names on every run: an output that shows one (an
    # error message naming a file) is the same each time.
    tmp = Path(tempfile.gettempdir()) / 'msta-lessons' / path.stem
    shutil.rmtree(tmp, ignore_errors=True); tmp.mkdir(parents=True)
    os.environ['TMPDIR'] = tempfile.tempdir = str(tmp)
    names = tempfile._RandomNameSequence()
    names._rng, names._rng_pid = random.Random(0), os.getpid()
    tempfile._name_sequence = names
    shell = CaptureShell(path, mpl_format='png')
    shell._run(f"import matplotlib as _mpl; _mpl.rcParams['figure.dpi'] = {FIGURE_DPI}; del _mpl")
    try:
        with working_directory(path.parent): shell.run_all(run, exc_stop=True, preproc=_no_eval)
    except BaseException:
        sys.stderr.write(shell.prettytb(fname=path.name) + '\n')
        raise SystemExit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ran = [c for c in run.cells if c.cell_type == 'code']
    code = [c for c in raw['cells'] if c['cell_type'] == 'code']
    assert len(ran) == len(code), f'{path.name}: {len(code)} code cells, {len(ran)} run'
    warnings = []
    for i, (c, r) in enumerate(zip(code, ran), 1):
        outs = _tidy(json.loads(json.dumps(r.get('outputs', [])))) if not _no_eval(r) else []
        for o in outs:
            if o.get('output_type') == 'stream':
                o['text'] = _clean_stream(''.join(o['text'])).splitlines(True)
            text = json.dumps(o.get('text', '')) + json.dumps({k: v for k, v in o.get('data', {}).items()
                                                              if k.startswith('text/')})
            for leak in _leaks(text.replace('\\\\', '\\')):
                warnings.append(f'{path.name}, code cell {i}: an output shows the local path {leak}')
        c['outputs'], c['execution_count'] = outs, None
    raw.setdefault('metadata', {})[META_KEY] = {'code_sha256': code_fingerprint(raw), 'public_data': with_data}
    cfg = get_config(path=ROOT)
    clean_nb(raw, False, cfg.get('allowed_metadata_keys').split(), cfg.get('allowed_cell_metadata_keys').split(),
             cfg.clean_ids)
    if META_KEY not in raw['metadata']:
        raise SystemExit(f"settings.ini's allowed_metadata_keys must list {META_KEY}, or nbdev_clean drops it")
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(nb2str(raw), encoding='utf-8')                          # as nbdev_clean writes it
    os.replace(tmp, path)
    return warnings


# ------------------------------------------------------------------------------------------------------ the CLI
def _resolve(names) -> list[Path]:
    if not names: return LESSONS
    out = []
    for n in names:
        p = Path(n)
        cands = [p] if p.suffix == '.ipynb' and p.exists() else [NBS / f'{p.stem}.ipynb']
        if not cands[0].exists() or cands[0].resolve() not in [l.resolve() for l in LESSONS]:
            raise SystemExit(f'{n}: not a lesson; lessons are {", ".join(l.stem for l in LESSONS)}')
        out.append(cands[0].resolve())
    return out


def have_public_data() -> bool:
    sys.path.insert(0, str(ROOT))
    from msta_core.core import reference_data, REFERENCE_DATA
    return all(reference_data(n) is not None for n in REFERENCE_DATA)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('lessons', nargs='*', help='lesson names (e.g. 06_msta) or paths; default: every lesson')
    ap.add_argument('--check', action='store_true', help='only report stale or missing outputs (exit 1 if any)')
    ap.add_argument('--stale', action='store_true', help='run only the lessons whose stored outputs are stale or missing')
    ap.add_argument('-j', '--jobs', type=int, default=1, help='lessons run at once (default 1)')
    ap.add_argument('--worker', nargs=2, metavar=('NOTEBOOK', 'WITH_DATA'), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.worker:
        sys.path.insert(0, str(ROOT))
        for w in run_one(Path(a.worker[0]), a.worker[1] == '1'): print('warning:', w)
        return 0

    lessons = _resolve(a.lessons)
    if a.check or a.stale:
        bad = {p: problems(p) for p in lessons}
        if a.check:
            for msgs in bad.values():
                for m in msgs: print(m)
            print(f'{sum(1 for m in bad.values() if m)} of {len(lessons)} lessons\' stored outputs need attention')
            return 1 if any(bad.values()) else 0
        lessons = [p for p in lessons if not current(p)]

    with_data = have_public_data()
    if not with_data:
        print('note: the public data was not found, so cells flagged `#| data` keep no outputs '
              '(fetch it with `python data_prep/fetch_splits.py`, or set MSTA_SHARED)')
    env = {**os.environ, **WORKER_ENV, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])}

    def one(p):
        t = time.time()
        r = subprocess.run([sys.executable, __file__, '--worker', str(p), '1' if with_data else '0'],
                           cwd=ROOT, env=env, capture_output=True, text=True)
        return p, r, time.time() - t

    failed, start = [], time.time()
    with ThreadPoolExecutor(max(1, a.jobs)) as ex:
        for p, r, secs in ex.map(one, lessons):
            print(f'{p.stem}: {"ok" if r.returncode == 0 else "FAILED"} in {secs:.0f} s', flush=True)
            if r.stdout.strip(): print('  ' + r.stdout.strip().replace('\n', '\n  '))
            if r.returncode: failed.append(p.stem); print(r.stderr[-6000:])
    print(f'{len(lessons) - len(failed)} of {len(lessons)} lessons ran in {time.time() - start:.0f} s' +
          (f'; failed (their notebooks are unchanged): {", ".join(failed)}' if failed else ''))
    total = sum(stored_bytes(read(p)) for p in LESSONS)
    print(f'stored outputs of all lessons: {total / 1e6:.2f} MB (limit {MAX_TOTAL_BYTES / 1e6:.0f} MB)')
    for p in lessons:
        for m in problems(p, required=False): print(m)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
