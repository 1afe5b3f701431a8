"""Checks a built site (`python docs/check_site.py site`, run by `make docs`): every
notebook page shows the plots its executed notebook drew, every registered model, wrapper
and problem has its entry in the API pages, and every configuration key is on the
configuration page. Exits 1 with one line per problem."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import reference_pages

PLOT = re.compile(r'<img[^>]+src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}')


def notebook_problems(site: Path) -> list[str]:
    problems = []
    for notebook in reference_pages.notebooks():
        page = site / "notebooks" / notebook.stem / "index.html"
        if not page.exists():
            problems.append(f"{page}: missing")
        elif not PLOT.search(page.read_text()):
            problems.append(f"{page}: no plot (an embedded PNG image)")
    return problems


def api_problems(site: Path) -> list[str]:
    """Every class the registries build has an anchor on the API pages."""
    ids = set()
    for page in (site / "reference" / "api").glob("*/index.html"):
        ids.update(re.findall(r'id="([^"]+)"', page.read_text()))
    paths = map(reference_pages.api_path, reference_pages.registered_classes())
    return [f"reference/api: no entry for {path}" for path in paths if path not in ids]


def configuration_problems(site: Path) -> list[str]:
    from surrogates.config import experiment_schema, task_kinds

    page = html.unescape((site / "reference" / "configuration" / "index.html").read_text())
    keys = [
        key for kind in task_kinds() for key in reference_pages.schema_keys(experiment_schema(kind))
    ]
    return [
        f"reference/configuration: no key {key.path}"
        for key in keys
        if f"<code>{key.path}</code>" not in page
    ]


def main(site: Path) -> int:
    problems = [*notebook_problems(site), *api_problems(site), *configuration_problems(site)]
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{site}: notebook plots, API entries and configuration keys all present")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "site")))
