"""Build the book: the README as its first page, then every lesson in order, then the experiment notebooks.

    python book/build.py            # -> _book/html/index.html (open it in a browser; no server, no network)

Nothing is executed: each page shows the outputs stored in its notebook (`python book/run_lessons.py` makes them).
The notebooks and the README are staged into `_book/src` first, as a reader should see them:
- cells flagged `#| hide` (and `#| default_exp`, `#| exporti`, `#| include: false`, and the `nbdev_export()` call) are
  left out; `#| echo: false` / `#| hide_input` keep only the output, `#| output: false` / `#| hide_output` only the
  code; every other cell is shown with its `#|` directive lines removed;
- a lesson named in code (`06_msta`, `nbs/06_msta.ipynb`, `train.ipynb`) becomes a link to its page; the README's
  links into `nbs/` resolve to the lesson pages.
Then Sphinx (myst-nb, sphinx-book-theme, MathJax from the `sphinx-mathjax-offline` wheel, all in the dev
dependencies) writes static HTML. Unchanged staged files are not rewritten, so a rebuild redoes changed pages only.
"""
from __future__ import annotations

import argparse, hashlib, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / '_book'
NBS = ROOT / 'nbs'
LESSONS = sorted(NBS.glob('[0-9][0-9]*_*.ipynb'))
EXPERIMENTS = [NBS / f'{n}.ipynb' for n in ('pretrain', 'train', 'results')]
PAGES = ['README.md', 'CONTRIBUTING.md']       # the front page, and how to work on the project (the last page)

HIDE = {'hide', 'default_exp', 'exporti', 'hide_line'}
ONLY_OUTPUT = {'echo', 'hide_input'}            # `#| echo: false`
ONLY_CODE = {'output', 'hide_output'}           # `#| output: false`
_DIRECTIVE = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
_FENCE = re.compile(r'^(\s*)(```|~~~)')


def sources() -> list[Path]:
    "Every input of the book, for the freshness stamp."
    pages = [ROOT / p for p in PAGES if (ROOT / p).exists()]
    notebooks = LESSONS + [e for e in EXPERIMENTS if e.exists()]
    shown = sorted({ROOT / r for p in pages for r in pictures(p.read_text(encoding='utf-8'), ROOT)} |
                   {NBS / r for p in notebooks for c in json.loads(p.read_text(encoding='utf-8'))['cells']
                    if c['cell_type'] == 'markdown' for r in pictures(''.join(c['source']), NBS)})
    return (pages + notebooks + shown +
            sorted(f for f in (ROOT / 'book').rglob('*') if f.is_file() and '__pycache__' not in f.parts))


def digest() -> str:
    h = hashlib.sha256()
    for p in sources(): h.update(str(p.relative_to(ROOT)).encode() + b'\0' + p.read_bytes() + b'\0')
    return h.hexdigest()


def is_fresh(html: Path = BOOK / 'html') -> bool:
    "The build in `html` was made from the sources as they are now."
    stamp = html.parent / 'stamp.json'
    return (html / 'index.html').exists() and stamp.exists() and json.loads(stamp.read_text())['digest'] == digest()


# ------------------------------------------------------------------------------------------------------- staging
def split_directives(source: str):
    "({directive: argument}, the code without its leading `#|` lines)."
    lines = source.splitlines(True)
    i, dirs = 0, {}
    while i < len(lines) and (not lines[i].strip() or _DIRECTIVE.match(lines[i])):
        m = _DIRECTIVE.match(lines[i])
        if m: dirs[m.group(1)] = m.group(2)
        i += 1
    return dirs, ''.join(lines[i:]) if dirs else source


def link_lessons(md: str, prefix: str, here: str = '') -> str:
    "`06_msta`, `nbs/06_msta.ipynb`, `train.ipynb` in running text -> links to those pages (fenced code left alone)."
    names = {p.stem for p in LESSONS + EXPERIMENTS}
    span = re.compile(r'(?<![\[`\w])`(?:nbs/)?([\w-]+?)(?:\.ipynb)?`(?![`\]])')
    def sub(m):
        if m.group(1) not in names or m.group(1) == here: return m.group(0)
        return f'[{m.group(0)}]({prefix}{m.group(1)}.ipynb)'
    out, fence = [], None
    for line in md.splitlines(True):
        f = _FENCE.match(line)
        if fence is None and f: fence = f.group(2)
        elif fence is not None and f and f.group(2) == fence: fence = None
        elif fence is None: line = span.sub(sub, line)
        out.append(line)
    return ''.join(out)


def stage_notebook(path: Path) -> dict:
    nb = json.loads(path.read_text(encoding='utf-8'))
    cells = []
    for c in nb['cells']:
        src = c['source'] if isinstance(c['source'], str) else ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            c['source'] = link_lessons(src, prefix='', here=path.stem)
        elif c['cell_type'] == 'code':
            dirs, code = split_directives(src)
            if HIDE & dirs.keys() or dirs.get('include') == 'false' or 'nbdev_export' + '(' in code: continue
            if not code.strip() and not c.get('outputs'): continue
            tags = set(c.get('metadata', {}).get('tags', []))
            if any(dirs.get(k, 'false') in ('', 'false') for k in ONLY_OUTPUT & dirs.keys()): tags.add('remove-input')
            if any(dirs.get(k, 'false') in ('', 'false') for k in ONLY_CODE & dirs.keys()): tags.add('remove-output')
            c['source'] = code
            if tags: c.setdefault('metadata', {})['tags'] = sorted(tags)
        cells.append(c)
    nb['cells'] = cells
    meta = nb.setdefault('metadata', {})
    meta.setdefault('kernelspec', {'name': 'python3', 'display_name': 'python3', 'language': 'python'})
    meta.setdefault('language_info', {'name': 'python', 'pygments_lexer': 'ipython3'})   # highlighted as Python
    return nb


def _write(path: Path, text: str):
    "Write only what changed: Sphinx then rebuilds only the changed pages."
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding='utf-8') != text: path.write_text(text, encoding='utf-8')


def toctree(caption: str, entries) -> str:
    return '\n```{toctree}\n:hidden:\n:caption: ' + caption + '\n\n' + ''.join(f'{e}\n' for e in entries) + '```\n'


def pictures(md: str, base: Path, html_only: bool = False) -> list[str]:
    """The pictures a markdown text shows from files beside it: `![...](figures/x.png)` and `<img src=...>` (only
    the latter with `html_only`: Sphinx copies the former into the book itself)."""
    refs = [b if html_only else a or b
            for a, b in re.findall(r'!\[[^\]]*\]\(<?([^)\s>]+)|<img[^>]*\ssrc=["\']([^"\']+)', md)]
    return [r for r in refs if r and (base / r).resolve().is_file() and base.resolve() in (base / r).resolve().parents]


def _copy_pictures(md: str, base: Path, dest: Path, wanted: set):
    for ref in pictures(md, base):
        (dest / ref).parent.mkdir(parents=True, exist_ok=True)
        if not (dest / ref).exists() or (dest / ref).read_bytes() != (base / ref).read_bytes():
            shutil.copy2(base / ref, dest / ref)
        wanted.add(dest / ref)


def stage(src: Path):
    wanted = {src / 'index.md'}
    front = (ROOT / 'README.md').read_text(encoding='utf-8')
    index = (link_lessons(front, prefix='nbs/') + '\n' +
             toctree('Lessons', [f'nbs/{p.stem}' for p in LESSONS]) +
             toctree('Experiments (papermill)', [f'nbs/{p.stem}' for p in EXPERIMENTS if p.exists()]))
    if (ROOT / 'CONTRIBUTING.md').exists():
        _write(src / 'contributing.md', link_lessons((ROOT / 'CONTRIBUTING.md').read_text(encoding='utf-8'), 'nbs/'))
        wanted.add(src / 'contributing.md')
        index += toctree('Working on msta', ['contributing'])
        index = re.sub(r'\]\(CONTRIBUTING\.md(#[^)]*)?\)', lambda m: f'](contributing.md{m.group(1) or ""})', index)
    _write(src / 'index.md', index)
    _copy_pictures(front, ROOT, src, wanted)
    for p in LESSONS + [e for e in EXPERIMENTS if e.exists()]:
        dest = src / 'nbs' / p.name
        _write(dest, json.dumps(stage_notebook(p), indent=1, ensure_ascii=False, sort_keys=True) + '\n')
        wanted.add(dest)
        for c in json.loads(p.read_text(encoding='utf-8'))['cells']:
            if c['cell_type'] == 'markdown': _copy_pictures(''.join(c['source']), NBS, src / 'nbs', wanted)
    for f in [f for f in src.rglob('*') if f.is_file() and f not in wanted]: f.unlink()   # pages since removed


# --------------------------------------------------------------------------------------------------------- build
def _title(page: Path) -> str:
    "A page's first heading, as the navigation shows it."
    text = (page.read_text(encoding='utf-8') if page.suffix == '.md' else
            '\n'.join(''.join(c['source']) for c in json.loads(page.read_text(encoding='utf-8'))['cells']
                      if c['cell_type'] == 'markdown'))
    m = re.search(r'^#\s+(.+?)\s*$', text, re.M)
    return m.group(1) if m else ''


def build(out: Path = BOOK / 'html', clean: bool = False, quiet: bool = False) -> float:
    "Stage and build into `out`; returns the seconds it took."
    start, made_from = time.time(), digest()
    work = out.parent
    src, doctrees, stamp = work / 'src', work / 'doctrees', work / 'stamp.json'
    pages = [[p.name, _title(p)] for p in [ROOT / 'README.md'] + LESSONS + EXPERIMENTS if p.exists()]
    # Sphinx rewrites only the pages that changed: a page added, removed, moved or retitled would leave the others'
    # navigation (sidebar, "next" and "previous") as it was. Then every page is built again.
    if not stamp.exists() or json.loads(stamp.read_text()).get('pages') != pages: clean = True
    if clean:
        for d in (src, doctrees, out): shutil.rmtree(d, ignore_errors=True)
    stage(src)
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-c', str(ROOT / 'book'), '-d', str(doctrees),
           '--keep-going', '-q', str(src), str(out)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=quiet, text=True)
    if r.returncode:
        raise SystemExit(f'sphinx-build failed ({r.returncode}):\n{(r.stderr or "")[-6000:]}')
    for page, base, dest in ([(ROOT / 'README.md', ROOT, out)] +
                             [(p, NBS, out / 'nbs') for p in LESSONS + EXPERIMENTS if p.exists()]):
        text = (page.read_text(encoding='utf-8') if page.suffix == '.md' else
                ''.join(''.join(c['source']) for c in json.loads(page.read_text(encoding='utf-8'))['cells']
                        if c['cell_type'] == 'markdown'))
        for ref in pictures(text, base, html_only=True):               # raw <img> tags: Sphinx leaves them as written
            (dest / ref).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(base / ref, dest / ref)
    stamp.write_text(json.dumps({'digest': made_from, 'pages': pages}) + '\n')
    return time.time() - start


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob('*') if f.is_file())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', type=Path, default=BOOK / 'html', help='where the HTML goes (default _book/html); the staged sources go beside it')
    ap.add_argument('--clean', action='store_true', help='rebuild every page')
    a = ap.parse_args(argv)
    secs = build(a.out.resolve(), clean=a.clean)
    sys.path.insert(0, str(Path(__file__).parent))
    from run_lessons import problems, COMMAND
    bad = [p.stem for p in LESSONS if problems(p)]
    if bad: print(f'{len(bad)} of {len(LESSONS)} lessons\' stored outputs are missing, stale or too large '
                  f'(`{COMMAND} --check` says which); the book shows them as stored')
    index = a.out.resolve() / 'index.html'
    print(f'book built in {secs:.0f} s: {index} ({size(a.out) / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
