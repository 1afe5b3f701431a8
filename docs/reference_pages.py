"""The generated pages of the site, as text, drawn from the code: the configuration reference
from the pydantic schemas, the model arguments from the registry's constructors, the
command-line reference from the argument parser, the API pages from the package's modules
(rendered by mkdocstrings), and the notebooks (executed copies from `build/notebooks/`).

`docs/generate.py` writes them while MkDocs builds; the tests read them from here."""

from __future__ import annotations

import hashlib
import html
import inspect
import json
import os
import pkgutil
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "build" / "notebooks"
# `make docs` sets it: a notebook without an executed copy is then an error, not a page
# without outputs.
REQUIRE_OUTPUTS = "SURROGATES_DOCS_REQUIRE_OUTPUTS"
# Where the executed copy records the notebook it was run from.
SOURCE_KEY = "surrogates_source_sha256"

# The API pages: each documents the modules of one part of the package.
API_PAGES = {
    "models": ("surrogates.models", "Models, wrappers, the registry and the model contract."),
    "data": ("surrogates.data", "Datasets, layouts, windows and the generators."),
    "training": ("surrogates.training", "The trainer, its tasks, steps and checkpoints."),
    "physics": ("surrogates.physics", "Physics problems for the pointwise solvers."),
    "evaluation": ("surrogates.evaluation", "Rollouts scored, results, tables and plots."),
    "top": ("surrogates", "Configs, the workflow, suites, metrics and the rest of the top level."),
}


# --- the configuration reference -----------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One configuration key: its dotted path (`train.curriculum.name`), the type, the
    default and the description, as the schema says them."""

    path: str
    type: str
    default: str
    description: str
    section: bool = False


def schema_keys(schema: type[BaseModel], prefix: str = "", values: Any = None) -> list[Key]:
    """Every key of `schema` and of the schemas nested in it, depth first, in field order.
    A key holding a list of sections lists its sections' keys as `key[].sub`. `values`, a
    section's default when its parent sets one of its own (a 2D recipe's `time`), gives the
    defaults of its keys."""
    keys = []
    for name, field in schema.model_fields.items():
        path = f"{prefix}{name}"
        nested = _nested_schemas(field.annotation)
        default = _default_value(field, values, name)
        description = " ".join((field.description or "").split())
        kind = _type_text(field.annotation, field.metadata)
        keys.append(Key(path, kind, _default_text(default), description, section=bool(nested)))
        for sub, many in nested:
            own = default if isinstance(default, sub) and not many else None
            keys.extend(schema_keys(sub, f"{path}[]." if many else f"{path}.", own))
        if schema.model_config.get("extra") == "allow" and name == "name":
            keys.append(_extra_key(prefix))
    return keys


def _extra_key(prefix: str) -> Key:
    """The free keys of a section that takes the arguments of what it names."""
    return Key(
        f"{prefix}*",
        "any",
        "",
        "The arguments of what `name` names (a model's constructor arguments, a problem's PDE "
        "parameters), checked against it when the config is loaded: see "
        "[Model arguments](models.md).",
    )


def _nested_schemas(annotation: Any) -> list[tuple[type[BaseModel], bool]]:
    """The schemas a field's type holds, each with whether it is inside a list."""
    found = []
    for inner, many in _leaves(annotation, many=False):
        if isinstance(inner, type) and issubclass(inner, BaseModel) and (inner, many) not in found:
            found.append((inner, many))
    return found


def _leaves(annotation: Any, many: bool) -> Iterator[tuple[Any, bool]]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _leaves(typing.get_args(annotation)[0], many)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _leaves(arg, many)
    elif origin in (list, tuple):
        for arg in typing.get_args(annotation):
            yield from _leaves(arg, True)
    elif origin is dict:
        yield from _leaves(typing.get_args(annotation)[1], True)
    else:
        yield annotation, many


_BOUNDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "min_length": "length ≥"}


def _type_text(annotation: Any, metadata: list[Any] = ()) -> str:
    """A type as a reader of YAML thinks of it: `int ≥ 1`, `"mse" | "h1"`, `list of str`."""
    text = _bare_type(annotation)
    bounds = _bounds(metadata)
    return f"{text} ({bounds})" if bounds else text


def _bare_type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_text(args[0], list(annotation.__metadata__))
    if origin is typing.Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_text(arg) for arg in args)
    if origin is list:
        return f"list of {_type_text(args[0])}"
    if origin is tuple:
        return f"({', '.join(_type_text(arg) for arg in args)})"
    if origin is dict:
        return f"mapping of {_type_text(args[0])} to {_type_text(args[1])}"
    if annotation is type(None):
        return "null"
    if annotation is typing.Any:
        return "any"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        for constraint in item.metadata if isinstance(item, FieldInfo) else [item]:
            for name, sign in _BOUNDS.items():
                value = getattr(constraint, name, None)
                if isinstance(constraint, annotated_types.BaseMetadata) and value is not None:
                    parts.append(f"{sign} {value}")
            pattern = getattr(constraint, "pattern", None)
            if pattern:
                parts.append(f"matching `{pattern}`")
    return ", ".join(parts)


_REQUIRED = object()


def _default_value(field: FieldInfo, values: Any, name: str) -> Any:
    if values is not None:
        return getattr(values, name)
    if field.default_factory is not None:
        return field.default_factory()
    return _REQUIRED if field.default is PydanticUndefined else field.default


def _default_text(value: Any) -> str:
    if value is _REQUIRED:
        return "required"
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{json.dumps(value, default=str)}`"


def _key_table(keys: list[Key]) -> list[str]:
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key in keys:
        name = f"**`{key.path}`**" if key.section else f"`{key.path}`"
        cells = [name, _cell(key.type), key.default, _cell(key.description)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def configuration_page() -> str:
    """Every key of the experiment configs (per task kind), the suites and the dataset
    recipes (per PDE kind)."""
    from surrogates.config import experiment_schema, task_kinds
    from surrogates.data.generate.recipe import recipe_types
    from surrogates.suites import Suite

    lines = [
        "# Configuration reference",
        "",
        "Generated from the schemas in the code (`surrogates/config.py`, `surrogates/suites.py`",
        "and the recipe schemas of `surrogates/data/generate/`), so it lists exactly the keys",
        "a file may hold. An unknown key, a wrong type or a value out of range fails when the",
        "file is read, with one line naming the key. Any key can be overridden on the command",
        "line: `-o train.epochs=5`. A key in **bold** is a section: its own keys follow it.",
        "",
        "## Experiments",
        "",
        "An experiment's `task:` picks its schema.",
    ]
    for kind in task_kinds():
        schema = experiment_schema(kind)
        lines += ["", f"### `task: {kind}`", "", _doc(schema), "", *_key_table(schema_keys(schema))]
    lines += ["", "## Suites", "", _doc(Suite), "", *_key_table(schema_keys(Suite))]
    lines += ["", "## Dataset recipes", "", "A recipe's `pde:` picks its schema."]
    by_schema: dict[type, list[str]] = {}
    for pde, schema in recipe_types().items():
        by_schema.setdefault(schema, []).append(pde)
    for schema, pdes in by_schema.items():
        names = ", ".join(f"`{pde}`" for pde in pdes)
        lines += ["", f"### `pde:` {names}", "", _doc(schema), "", *_key_table(schema_keys(schema))]
    return "\n".join(lines) + "\n"


def _doc(obj: Any) -> str:
    """The first paragraph of an object's docstring, on one line."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


# --- the model arguments -------------------------------------------------------------------


def registered_classes() -> list[type]:
    """The class of every registered model, wrapper and physics problem."""
    import surrogates.physics  # noqa: F401  (registers the problems)
    from surrogates.models import available, get, wrapper, wrappers
    from surrogates.physics.problem import problem_class, problems

    return [
        *(get(name) for name in available()),
        *(wrapper(name) for name in wrappers()),
        *(problem_class(name) for name in problems()),
    ]


def models_page() -> str:
    """Every registered model, wrapper and physics problem, with the arguments a config
    gives it (the constructor's, without those the engine supplies from the data)."""
    import surrogates.physics  # noqa: F401  (registers the problems)
    from surrogates.models import available, get, wrapper, wrappers
    from surrogates.models.contract import CONTEXT_ARGUMENTS
    from surrogates.physics.problem import problem_class, problems

    lines = [
        "# Model arguments",
        "",
        "Generated from the registry: every name `model.name` may take, the class it builds and",
        "the arguments its section may set, with their types and defaults as the constructor",
        "declares them. The engine supplies the arguments that follow from the data",
        f"({', '.join(f'`{name}`' for name in CONTEXT_ARGUMENTS)}); a config cannot set them.",
        "`surrogates models` lists the same names.",
        "",
        "## Operators (`task: operator`)",
    ]
    for name in available("operator"):
        lines += _constructor_section(name, get(name), skip_first=False)
    lines += ["", "## Pointwise models (`task: physics`)"]
    for name in available("pointwise"):
        lines += _constructor_section(name, get(name), skip_first=False)
    lines += ["", "## Wrappers (`model.wrappers`)"]
    for name in wrappers():
        lines += _constructor_section(name, wrapper(name), skip_first=True)
    lines += ["", "## Physics problems (`problem.name`)"]
    for name in problems():
        lines += _problem_section(name, problem_class(name))
    return "\n".join(lines) + "\n"


def _constructor_section(name: str, cls: type, skip_first: bool) -> list[str]:
    """A model's (or, past the model inside, a wrapper's) constructor arguments a config
    may set."""
    from surrogates.models.contract import CONTEXT_ARGUMENTS

    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if skip_first:
        parameters = parameters[1:]
    rows = [p for p in parameters if p.name not in CONTEXT_ARGUMENTS]
    lines = ["", f"### `{name}`", "", f"{_api_link(cls)}: {_doc(cls)}", ""]
    if not rows:
        return [*lines, "No arguments of its own."]
    lines += ["| argument | type | default |", "| --- | --- | --- |"]
    for parameter in rows:
        lines.append(
            f"| `{parameter.name}` | {_annotation_text(parameter.annotation)} | "
            f"{_parameter_default(parameter)} |"
        )
    return lines


def api_path(cls: type) -> str:
    """The class's dotted path, the identifier of its entry in the API pages."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _api_link(cls: type) -> str:
    """A link to the class's entry in the API pages (a strict build fails if it has none)."""
    return f"[`{api_path(cls)}`][{api_path(cls)}]"


def _problem_section(name: str, cls: type) -> list[str]:
    import dataclasses

    lines = ["", f"### `{name}`", "", f"{_api_link(cls)}: {_doc(cls)}", ""]
    fields = [f for f in dataclasses.fields(cls) if f.init]
    if not fields:
        return [*lines, "No PDE parameters."]
    lines += ["| parameter | type | default |", "| --- | --- | --- |"]
    for field in fields:
        default = "required" if field.default is dataclasses.MISSING else f"`{field.default!r}`"
        lines.append(f"| `{field.name}` | {_annotation_text(field.type)} | {default} |")
    return lines


def _annotation_text(annotation: Any) -> str:
    """An annotation as inline code inside a table cell (a `|` in a code span would split
    the cell, and an escaped one would show its backslash)."""
    if annotation is inspect.Parameter.empty:
        return ""
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return f"<code>{html.escape(text).replace('|', '&#124;')}</code>"


def _parameter_default(parameter: inspect.Parameter) -> str:
    if parameter.default is inspect.Parameter.empty:
        return "required"
    return f"`{parameter.default!r}`"


# --- the command line ----------------------------------------------------------------------


def cli_page() -> str:
    """Each command's help, as `surrogates COMMAND --help` prints it."""
    import argparse

    from surrogates.cli import parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help at the terminal's width
    top = parser()
    lines = [
        "# Command line",
        "",
        "Generated from the argument parser (`surrogates.cli.parser`). Every command turns bad",
        "input into one line on stderr and exit code 2, and Ctrl-C into one line saying what",
        "was kept and exit code 130.",
        "",
        "```text",
        top.format_help().rstrip(),
        "```",
    ]
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        lines += ["", f"## `surrogates {name}`", "", "```text", command.format_help().rstrip()]
        lines += ["```"]
    return "\n".join(lines) + "\n"


# --- the API -------------------------------------------------------------------------------


def api_modules(package: str) -> list[str]:
    """The modules an API page documents: `package` itself, then its modules and
    sub-packages in name order (for the top level, only its own modules)."""
    root = __import__(package, fromlist=["__path__"])
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.name.endswith("__main__"):
            continue
        if package == "surrogates" and info.name.count(".") > 1:
            continue
        if package == "surrogates" and info.ispkg:
            continue
        names.append(info.name)
    return names


def api_page(page: str) -> str:
    """An API page: each module's docstring and public members. A package shows only its
    docstring: the names it re-exports are documented in the modules that define them."""
    package, summary = API_PAGES[page]
    lines = [f"# `{package}`", "", summary]
    for module in api_modules(package):
        lines += ["", f"::: {module}"]
        if module == package:
            lines += ["    options:", "      members: false"]
    return "\n".join(lines) + "\n"


# --- the notebooks -------------------------------------------------------------------------


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def source_hash(notebook: Path) -> str:
    return hashlib.sha256(notebook.read_bytes()).hexdigest()


def store_executed(notebook: Path, executed: dict[str, Any], folder: Path = EXECUTED) -> Path:
    """Write the executed copy of `notebook` (its outputs, as nbformat's JSON) into `folder`,
    marked with the source it was run from; written whole or not at all."""
    executed = {**executed, "metadata": {**executed.get("metadata", {})}}
    executed["metadata"][SOURCE_KEY] = source_hash(notebook)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / notebook.name
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(executed, indent=1, ensure_ascii=False) + "\n")
    partial.replace(target)
    return target


def notebook_text(notebook: Path, folder: Path = EXECUTED) -> tuple[str, bool]:
    """The notebook as the site shows it, and whether that is an executed copy.

    The executed copy in `build/notebooks/` is taken when it was run from the notebook as
    it is now; a stale copy is an error, and so is a missing one when `make docs` builds."""
    copy = folder / notebook.name
    if copy.exists():
        text = copy.read_text()
        if json.loads(text).get("metadata", {}).get(SOURCE_KEY) != source_hash(notebook):
            raise RuntimeError(f"{copy}: executed from an older {notebook}: run `make docs`")
        return text, True
    if os.environ.get(REQUIRE_OUTPUTS):
        raise RuntimeError(f"{notebook}: no executed copy in {folder}: run `make docs`")
    return notebook.read_text(), False


def pages() -> dict[str, str]:
    """Every generated page by its path in the site's sources."""
    generated = {
        "reference/configuration.md": configuration_page(),
        "reference/models.md": models_page(),
        "reference/cli.md": cli_page(),
    }
    for page in API_PAGES:
        generated[f"reference/api/{page}.md"] = api_page(page)
    return generated
