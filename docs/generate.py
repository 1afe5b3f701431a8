"""Writes the generated pages of the site while MkDocs builds it (the gen-files plugin runs
this file): the configuration, model-argument, command-line and API references, drawn from
the code so that they cannot drift from it, and the notebooks, with their outputs where
`make docs` has executed them."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).parent))

import reference_pages

log = logging.getLogger("mkdocs.plugins.surrogates")
# nbconvert notes every plot without alternative text; a notebook's outputs cannot carry one.
logging.getLogger("traitlets").setLevel(logging.ERROR)

for path, text in reference_pages.pages().items():
    with mkdocs_gen_files.open(path, "w") as page:
        page.write(text)

for notebook in reference_pages.notebooks():
    text, executed = reference_pages.notebook_text(notebook)
    if not executed:
        log.info("%s: no executed copy, rendered without outputs (make docs runs it)", notebook)
    with mkdocs_gen_files.open(f"notebooks/{notebook.name}", "w") as page:
        page.write(text)
