"""The book (`python book/build.py`) read in a real browser: Debian's Chromium, headless, driven by selenium.

Every page loads with no console error and no request that leaves the book (anything but file:// and data: URLs),
every image loads, all math is typeset by MathJax (no TeX left in the text), every link inside the book leads to a
file of the book, no nbdev directive or hidden cell shows, and the navigation (sidebar, and "next" from the front
page) reaches every lesson in lesson order. The book under `_book/html` is reused when it was built from the
sources as they are now; otherwise the test builds one in a temporary folder.

Without Chromium and chromedriver these tests skip, saying how to install them (`.ci/run` installs them)."""
import importlib.util, json, re, shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('msta_book_build', ROOT / 'book' / 'build.py')
book = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(book)

INSTALL = 'apt-get update && apt-get install -y chromium chromium-driver'
CHROMIUM = next((shutil.which(n) for n in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(n)), None)
DRIVER = shutil.which('chromedriver')
needs_chromium = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                    reason=f'the browser test needs Chromium and chromedriver, not found on PATH: '
                                           f'install them with `{INSTALL}` (Debian)')
LESSON_PAGES = [f'nbs/{p.stem}.html' for p in book.LESSONS]
BOOK_PAGES = (['index.html'] + LESSON_PAGES + [f'nbs/{p.stem}.html' for p in book.EXPERIMENTS if p.exists()] +
              (['contributing.html'] if (ROOT / 'CONTRIBUTING.md').exists() else []))


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    if book.is_fresh(): return book.BOOK / 'html'
    out = tmp_path_factory.mktemp('book') / 'html'
    book.build(out, quiet=True)
    return out


@pytest.fixture(scope='module')
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-default-apps',
              '--disable-sync', '--disable-extensions', '--window-size=1400,1000'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL', 'performance': 'ALL'})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _url(site: Path, page: str) -> str: return (site / page).as_uri()


def _page_of(url: str, site: Path) -> str:
    return Path(unquote(urlparse(url).path)).relative_to(site.resolve()).as_posix()


WAIT_FOR_MATH = """
const done = arguments[arguments.length - 1];
if (window.MathJax && MathJax.startup && MathJax.startup.promise)
  MathJax.startup.promise.then(() => done('typeset'), e => done('MathJax failed: ' + e));
else done(document.querySelector('.math') ? 'MathJax not loaded' : 'no math');
"""

INSPECT = """
const skip = el => el.closest('pre, code, script, style, textarea, mjx-container, .highlight, .output');
const texts = [];
const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) { const n = walker.currentNode; if (!skip(n.parentElement)) texts.push(n.textContent); }
const maths = [...document.querySelectorAll('.math')];
return {
  images: [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
  output_images: document.querySelectorAll('.cell_output img').length,
  math: maths.length,
  math_untypeset: maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
  mjx: document.querySelectorAll('mjx-container').length,
  text: texts.join(' '),
  code: [...document.querySelectorAll('div.cell div.cell_input pre')].map(p => p.textContent),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  sidebar: [...document.querySelectorAll('nav.bd-docs-nav a.reference.internal')].map(a => a.href),
  next: (document.querySelector('a.right-next') || {}).href || null,
};
"""
RAW_TEX = re.compile(r'\$\$|\\\(|\\\)|\\\[|\\\]|\$\s*\\[A-Za-z]+')


def _requests_leaving(perf_log) -> list[str]:
    out = []
    for e in perf_log:
        msg = json.loads(e['message'])['message']
        if not msg.get('method', '').startswith('Network.'): continue
        p = msg.get('params', {})
        url = (p.get('request') or {}).get('url') or p.get('url') or (p.get('response') or {}).get('url')
        if url and urlparse(url).scheme not in ('file', 'data', 'blob', 'about'): out.append(url)
    return sorted(set(out))


def _staged_images(site: Path, page: str) -> int:
    "Image outputs the page's staged notebook holds (hidden cells already left out)."
    src = site.parent / 'src' / page.replace('.html', '.ipynb')
    if not src.exists(): return 0
    nb = json.loads(src.read_text())
    return sum(1 for c in nb['cells'] if c['cell_type'] == 'code' and 'remove-output' not in c.get('metadata', {}).get('tags', [])
               for o in c.get('outputs', []) if any(m.startswith('image/') for m in o.get('data', {})))


@needs_chromium
def test_every_page_in_a_browser(site, browser):
    pages = BOOK_PAGES + [p.relative_to(site).as_posix() for p in site.glob('*.html') if p.name not in BOOK_PAGES]
    problems, typeset = [], 0
    for page in pages:
        browser.get_log('browser'); browser.get_log('performance')            # start each page with empty logs
        browser.get(_url(site, page))
        math_state = browser.execute_async_script(WAIT_FOR_MATH)
        info = browser.execute_script(INSPECT)
        errors = [e['message'] for e in browser.get_log('browser') if e['level'] == 'SEVERE']
        leaving = _requests_leaving(browser.get_log('performance'))
        if errors: problems.append(f'{page}: console errors: {errors}')
        if leaving: problems.append(f'{page}: requests that leave the book: {leaving}')
        if 'failed' in math_state or 'not loaded' in math_state: problems.append(f'{page}: {math_state}')
        broken = [i['src'][:120] for i in info['images'] if not i['ok']]
        if broken: problems.append(f'{page}: images that did not load: {broken}')
        if info['math_untypeset']: problems.append(f'{page}: math not typeset: {info["math_untypeset"][:3]}')
        if info['mjx'] < info['math']: problems.append(f'{page}: {info["math"]} math elements, {info["mjx"]} typeset')
        raw = RAW_TEX.findall(info['text'])
        if raw: problems.append(f'{page}: TeX left in the text: {raw[:5]}')
        shown = [c for c in info['code'] if re.search(r'^\s*#\s*\|', c, re.M) or 'nbdev_export(' in c]
        if shown: problems.append(f'{page}: code shows nbdev directives or hidden cells: {[c[:80] for c in shown[:3]]}')
        want = _staged_images(site, page)
        if info['output_images'] < want:
            problems.append(f'{page}: {want} stored image outputs, {info["output_images"]} shown')
        for href in info['links']:
            u = urlparse(href)
            if u.scheme == 'file' and not Path(unquote(u.path)).exists(): problems.append(f'{page}: broken link {href}')
            if u.scheme == 'file' and u.path.endswith('.ipynb'): problems.append(f'{page}: unresolved link {href}')
        typeset += info['mjx']
    assert not problems, '\n'.join(problems)
    assert typeset > 0, 'no math was typeset on any page (the lessons write Eq. 7-16 in TeX)'


@needs_chromium
def test_navigation_reaches_every_lesson_in_order(site, browser):
    browser.get(_url(site, 'index.html'))
    info = browser.execute_script(INSPECT)
    sidebar = [_page_of(h.split('#')[0], site) for h in info['sidebar']]
    missing = [p for p in LESSON_PAGES if p not in sidebar]
    assert not missing, f'lessons missing from the front page\'s sidebar: {missing}'
    assert [p for p in sidebar if p in LESSON_PAGES] == LESSON_PAGES, 'the sidebar lists the lessons out of order'

    visited, url = [], _url(site, 'index.html')
    while url and len(visited) <= len(BOOK_PAGES):
        browser.get(url)
        visited.append(_page_of(browser.current_url.split('#')[0], site))
        url = browser.execute_script(INSPECT)['next']
    assert visited == BOOK_PAGES, f'following "next" from the front page visits {visited}'


# ------------------------------------------------------------------------------ staging (no browser needed)
def test_staging_shows_what_a_reader_should_see(tmp_path):
    md = lambda s: {'cell_type': 'markdown', 'id': 'm', 'metadata': {}, 'source': s}
    code = lambda s, outs=(): {'cell_type': 'code', 'id': 'c', 'metadata': {}, 'execution_count': None,
                               'source': s, 'outputs': list(outs)}
    out = {'output_type': 'stream', 'name': 'stdout', 'text': ['7\n']}
    nb = {'nbformat': 4, 'nbformat_minor': 5, 'metadata': {}, 'cells': [
        md('# Toy\n\nSee `06_msta` and `nbs/train.ipynb`, not `06_mста`, `x` or ``06_msta``; ours is `99_toy`.\n'
           '```python\n`06_msta` in a fence\n```'),
        code('#| default_exp toy'), code('#| hide\nimport secret'), code('#| export\ndef f(): return 7'),
        code('#|export\n#| notest\n\nf()', [out]), code('#| echo: false\nf()', [out]),
        code('#| output: false\nf()', [out]), code('#| include: false\nf()'),
        code('#| hide\nimport nbdev; nbdev.nbdev_export()'), code('x = 1  # a comment #| that stays')]}
    path = tmp_path / '99_toy.ipynb'
    path.write_text(json.dumps(nb))
    staged = book.stage_notebook(path)
    cells = staged['cells']
    assert cells[0]['source'] == ('# Toy\n\nSee [`06_msta`](06_msta.ipynb) and [`nbs/train.ipynb`](train.ipynb), '
                                  'not `06_mста`, `x` or ``06_msta``; ours is `99_toy`.\n'
                                  '```python\n`06_msta` in a fence\n```')
    assert [c['source'] for c in cells[1:]] == ['def f(): return 7', 'f()', 'f()', 'f()',
                                                 'x = 1  # a comment #| that stays']
    assert cells[2]['outputs'] == [out]
    assert cells[3]['metadata']['tags'] == ['remove-input'] and cells[4]['metadata']['tags'] == ['remove-output']
    assert staged['metadata']['language_info']['name'] == 'python'


def test_readme_links_into_nbs_reach_the_lesson_pages():
    front = book.link_lessons('[MSTA](nbs/06_msta.ipynb) and the lesson `06_msta`; `runs/default.ipynb` stays', 'nbs/')
    assert front == '[MSTA](nbs/06_msta.ipynb) and the lesson [`06_msta`](nbs/06_msta.ipynb); `runs/default.ipynb` stays'


def test_pictures_beside_a_page_are_found(tmp_path):
    (tmp_path / 'figs').mkdir(); (tmp_path / 'figs' / 'a.png').write_bytes(b'png'); (tmp_path / 'b.svg').write_text('<svg/>')
    md = ('![a](figs/a.png) <img width=3 src="b.svg"> ![gone](figs/none.png) ![web](https://example.org/c.png) '
          '![outside](../x.png)')
    assert book.pictures(md, tmp_path) == ['figs/a.png', 'b.svg']
    assert book.pictures(md, tmp_path, html_only=True) == ['b.svg']
