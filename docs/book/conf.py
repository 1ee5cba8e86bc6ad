"""Sphinx configuration of the course website (``make book``; ``make book TEACHER=1`` for the teacher edition).

``tools/build_book.py`` stages the pages (the syllabus docs/COURSE.md as the landing page, docs/*.md, the executed
notebooks in their student or teacher form) into a folder and runs ``sphinx-build -c docs/book`` on it. Nothing is
executed (the notebooks are committed with their outputs) and nothing is fetched: the theme's files and MathJax
come from installed packages, so the site builds and reads offline.
"""

from __future__ import annotations

import os

TEACHER = os.environ.get("CROSSFLOW_BOOK_EDITION", "student") == "teacher"

project = "crossflow_mini: CrossFlow in eleven notebooks"
author = "crossflow_mini contributors"
copyright = "crossflow_mini contributors, MIT licence"
html_title = "CrossFlow, rebuilt small" + (" - teacher edition" if TEACHER else "")
root_doc = "index"

extensions = ["myst_nb", "sphinx_togglebutton"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_mathjax"]

# the notebooks are shown as committed (executed with the course profile by `make notebooks`), never re-executed
nb_execution_mode = "off"
nb_merge_streams = True
nb_ipywidgets_js: dict = {}  # the sliders need a live kernel; their text form is shown, no widget script fetched
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]

html_theme = "sphinx_book_theme"
html_theme_options = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
}
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False

# MathJax 2 from the PyPI package jupyter-server-mathjax, copied beside the pages by tools/build_book.py: formulas
# render with no network (its combined TeX + HTML-CSS configuration, the STIX web fonts it ships)
mathjax_path = "_mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]], "processEscapes": True,
                "processClass": "math|output_area", "ignoreClass": "document"},
    "HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web", "webFont": "STIX-Web",
                 "imageFont": None},
    "showMathMenu": False,
    "messageStyle": "none",
}
