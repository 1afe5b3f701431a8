"""The documentation's generated pages cover the code: every configuration key, registered
model, command and option, and module; the site's navigation lists every page and notebook;
executed notebooks are shown only when they were run from the notebook as it is.

The site itself is built (strictly) by `make docs`."""

from __future__ import annotations

import argparse
import json
import pkgutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "docs"))

import reference_pages  # noqa: E402


def _json_schema_keys(schema: dict, node: dict, prefix: str) -> list[str]:
    """Every key path of a JSON schema (pydantic's own rendering of the config schema,
    independent of the reference's walk)."""
    keys = []
    for name, prop in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        keys.append(path)
        for target, many in _references(schema, prop, False):
            keys += _json_schema_keys(schema, target, f"{path}[]." if many else f"{path}.")
    return keys


def _references(schema: dict, prop: dict, many: bool) -> list[tuple[dict, bool]]:
    if "$ref" in prop:
        return [(schema["$defs"][prop["$ref"].rsplit("/", 1)[-1]], many)]
    found = []
    for option in prop.get("anyOf", []) + prop.get("allOf", []):
        found += _references(schema, option, many)
    if isinstance(prop.get("items"), dict):
        found += _references(schema, prop["items"], True)
    if isinstance(prop.get("additionalProperties"), dict):
        found += _references(schema, prop["additionalProperties"], True)
    return found


def _schemas() -> list[type]:
    from surrogates.config import experiment_schema, task_kinds
    from surrogates.data.generate.recipe import recipe_types
    from surrogates.suites import Suite

    kinds = [experiment_schema(kind) for kind in task_kinds()]
    return [*kinds, Suite, *dict.fromkeys(recipe_types().values())]


@pytest.fixture(scope="module")
def configuration() -> str:
    return reference_pages.configuration_page()


def test_every_key_of_every_schema_is_in_the_configuration_reference(configuration):
    missing, checked = [], 0
    for cls in _schemas():
        schema = cls.model_json_schema()
        for key in _json_schema_keys(schema, schema, ""):
            checked += 1
            if f"| `{key}` |" not in configuration and f"| **`{key}`** |" not in configuration:
                missing.append(f"{cls.__name__}: {key}")
    assert len(_schemas()) >= 8 and checked > 200
    assert not missing, f"keys missing from the configuration reference: {missing}"


def test_the_configuration_reference_gives_type_default_and_description(configuration):
    row = next(line for line in configuration.splitlines() if line.startswith("| `train.epochs`"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    from surrogates.config import TrainSpec

    field = TrainSpec.model_fields["epochs"]
    assert cells[1] == "int (≥ 1)"
    assert cells[2] == f"`{field.default}`"
    assert cells[3] == " ".join(field.description.split())
    assert "| `data.files` | list of str (length ≥ 1) | required |" in configuration


def test_every_registered_model_wrapper_and_problem_links_to_its_api_entry():
    """The model-argument page links each class to its API entry, whose module an API page
    documents; a strict build fails on a link without its target, so each has an entry."""
    import surrogates.models
    import surrogates.physics
    from surrogates.physics.problem import problem_class, problems

    page = reference_pages.models_page()
    documented = {m for package, _ in reference_pages.API_PAGES.values() for m in _api(package)}
    classes = [surrogates.models.get(name) for name in surrogates.models.available()]
    classes += [surrogates.models.wrapper(name) for name in surrogates.models.wrappers()]
    classes += [problem_class(name) for name in problems()]
    for cls in classes:
        path = f"{cls.__module__}.{cls.__qualname__}"
        assert f"[`{path}`][{path}]" in page
        assert cls.__module__ in documented
        assert not cls.__qualname__.startswith("_")
    for name in surrogates.models.available():
        assert f"### `{name}`" in page


def _api(package: str) -> list[str]:
    return reference_pages.api_modules(package)


def test_every_module_of_the_package_is_on_one_api_page():
    import surrogates

    every = {"surrogates"} | {
        info.name
        for info in pkgutil.walk_packages(surrogates.__path__, prefix="surrogates.")
        if not info.name.endswith("__main__")
    }
    pages = [_api(package) for package, _ in reference_pages.API_PAGES.values()]
    listed = [module for page in pages for module in page]
    assert sorted(listed) == sorted(every)
    for page, (package, _) in zip(
        reference_pages.API_PAGES, reference_pages.API_PAGES.values(), strict=True
    ):
        assert f"::: {package}\n" in reference_pages.api_page(page)


def test_every_command_and_option_is_in_the_cli_reference():
    from surrogates.cli import parser

    page = reference_pages.cli_page()
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {
        "generate",
        "inspect",
        "train",
        "evaluate",
        "benchmark",
        "models",
    }
    for name, command in commands.choices.items():
        section = page.split(f"## `surrogates {name}`", 1)[1].split("\n## ", 1)[0]
        for action in command._actions:
            for option in action.option_strings or [action.metavar or action.dest]:
                assert option in section, f"surrogates {name}: {option}"


def _nav_files(nav: list) -> list[str]:
    files = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        files += _nav_files(value) if isinstance(value, list) else [value]
    return files


def test_the_navigation_lists_every_page_and_notebook_and_each_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = _nav_files(config["nav"])
    written = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    generated = set(reference_pages.pages())
    notebooks = {f"notebooks/{p.name}" for p in reference_pages.notebooks()}
    assert len(notebooks) >= 6
    assert set(listed) == written | generated | notebooks
    assert len(listed) == len(set(listed))


@pytest.fixture
def notebook(tmp_path) -> Path:
    path = tmp_path / "07_example.ipynb"
    cell = {"cell_type": "code", "metadata": {}, "source": "1 + 1", "outputs": []}
    cell["execution_count"] = None
    path.write_text(
        json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    return path


def test_an_executed_copy_is_shown_only_while_it_matches_its_notebook(notebook, tmp_path):
    folder = tmp_path / "executed"
    source = json.loads(notebook.read_text())
    executed = json.loads(notebook.read_text())
    executed["cells"][0]["outputs"] = [
        {"output_type": "execute_result", "data": {"text/plain": "2"}, "metadata": {}}
    ]
    assert reference_pages.notebook_text(notebook, folder) == (notebook.read_text(), False)

    reference_pages.store_executed(notebook, executed, folder)
    text, shown = reference_pages.notebook_text(notebook, folder)
    assert shown and json.loads(text)["cells"][0]["outputs"][0]["data"]["text/plain"] == "2"
    assert not list(folder.glob("*.partial"))

    source["cells"][0]["source"] = "1 + 2"
    notebook.write_text(json.dumps(source))
    with pytest.raises(RuntimeError, match=r"executed from an older .*07_example\.ipynb"):
        reference_pages.notebook_text(notebook, folder)


def test_a_missing_executed_copy_fails_the_build_that_requires_outputs(
    notebook, tmp_path, monkeypatch
):
    monkeypatch.setenv(reference_pages.REQUIRE_OUTPUTS, "1")
    with pytest.raises(RuntimeError, match=r"07_example\.ipynb: no executed copy"):
        reference_pages.notebook_text(notebook, tmp_path / "executed")
