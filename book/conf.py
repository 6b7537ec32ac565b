"""Sphinx configuration of the book. `python book/build.py` stages the README and the notebooks into `_book/src`
(nbdev directives turned into what a reader should see) and builds them with this file into `_book/html`.
The notebooks are not executed: the book shows the outputs stored in them (`python book/run_lessons.py`)."""
import importlib.util
from pathlib import Path

from sphinx.util.fileutil import copy_asset

project = 'msta'
author = 'msta developers'
copyright = '2026 onwards, msta developers'
language = 'en'

extensions = ['myst_nb']
nb_execution_mode = 'off'                    # the stored outputs, as committed
nb_merge_streams = True                      # one block per cell for stdout, one for stderr
myst_enable_extensions = ['dollarmath', 'amsmath']
myst_heading_anchors = 3
suppress_warnings = ['myst.header']          # a lesson may go from ## to ####; its headings stay as written

html_theme = 'sphinx_book_theme'
html_title = 'msta: Multi-modal Spatio-Temporal Adapters, step by step'
html_theme_options = {
    'home_page_in_toc': True,
    'show_toc_level': 2,
    'use_download_button': False,
    'use_fullscreen_button': False,
    'navigation_with_keys': False,
}
html_context = {'default_mode': 'auto'}     # light or dark as the reader's system is (unset, the theme logs an error)
html_static_path = ['_static']
html_css_files = ['book.css']
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
pygments_style = 'default'

# MathJax 3 from the `sphinx-mathjax-offline` wheel, served from the book itself: nothing is fetched when a page
# is read. Only what the TeX-to-HTML bundle loads is copied (its fonts, the TeX extensions it may autoload, the menu,
# and the accessibility and speech parts the menu loads when asked): about 7 MB of the wheel's 24 MB.
mathjax_path = 'mathjax/tex-chtml.js'
MATHJAX_PARTS = ['tex-chtml.js', 'output/chtml', 'input/tex/extensions', 'ui', 'a11y', 'sre', 'adaptors']


def _copy_mathjax(app, exc):
    if exc is not None: return
    spec = importlib.util.find_spec('sphinx-mathjax-offline')
    if spec is None: raise RuntimeError('the book needs `pip install sphinx-mathjax-offline` (MathJax, served offline)')
    src = Path(spec.origin).parent / 'static' / 'mathjax'
    dest = Path(app.outdir) / '_static' / 'mathjax'
    for part in MATHJAX_PARTS:
        (dest / part).parent.mkdir(parents=True, exist_ok=True)
        copy_asset(str(src / part), str(dest / part if (src / part).is_dir() else dest / Path(part).parent))


def setup(app):
    app.connect('build-finished', _copy_mathjax)
