"""Command-line entry point: `surrogates generate|inspect`.

A thin layer over the library: each command parses its arguments, calls one library function
and prints. Bad input (`SurrogatesError`) becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from surrogates.errors import SurrogatesError


def _generate(args: argparse.Namespace) -> None:
    from surrogates.data.generate.generator import run_recipe

    written = run_recipe(args.recipe, samples=args.samples, out=args.out, force=args.force)
    for path in written:
        print(path)


def _inspect(args: argparse.Namespace) -> None:
    from rich.console import Console

    from surrogates.data.inspect import inspect_files, render_report

    report = inspect_files(args.files, stride_t=args.stride_t, stride_x=args.stride_x)
    Console().print(render_report(report))
    if report.non_finite:
        raise SurrogatesError(f"{report.non_finite_summary()} (see the table above)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surrogates", description="Neural PDE surrogates in JAX: data, models, training."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser(
        "generate", help="write benchmark HDF5 files from a dataset recipe (datasets/*.yaml)"
    )
    generate.add_argument("recipe", type=Path, help="recipe YAML, e.g. datasets/burgers1d.yaml")
    generate.add_argument("--samples", type=int, help="trajectories per file (overrides recipe)")
    generate.add_argument(
        "--out", type=Path, help="output folder (default: $SURROGATES_DATA or datasets/data)"
    )
    generate.add_argument(
        "--force", action="store_true", help="regenerate files that exist with other settings"
    )
    generate.set_defaults(run=_generate)

    inspect = commands.add_parser(
        "inspect", help="print layout, fields, shapes, coordinates, parameters and statistics"
    )
    inspect.add_argument("files", type=Path, nargs="+", help="HDF5 files opened as one dataset")
    inspect.add_argument("--stride-t", type=int, default=1, help="keep every k-th frame")
    inspect.add_argument("--stride-x", type=int, default=1, help="keep every k-th grid point")
    inspect.set_defaults(run=_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except SurrogatesError as error:
        print(f"surrogates {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
