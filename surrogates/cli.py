"""Command-line entry point: `surrogates generate|inspect|train|evaluate|benchmark|models`.

A thin layer over the library: each command parses its arguments, calls one library function
and prints. Bad input (`SurrogatesError`) becomes one line on stderr and exit code 2; Ctrl-C one
line saying what was kept and exit code 130.

XLA on CPU takes each step's scratch memory afresh from the system; glibc can map it in
transparent huge pages (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`), far fewer page faults and a
faster step. glibc reads the variable only when a process starts, so the command, when the
variable is unset on Linux with glibc, starts itself again with it set (a value of the user's
own is kept as it is).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from surrogates.errors import Interrupted, SurrogatesError

HUGE_PAGES = "glibc.malloc.hugetlb=1"
INTERRUPTED = 130  # the shell's code for a process stopped by Ctrl-C (128 + SIGINT)


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


def _train(args: argparse.Namespace) -> None:
    from surrogates.errors import ConfigError

    if (args.experiment is None) == (args.resume is None):
        raise ConfigError("give an experiment file or --resume RUN_DIR (one of the two)")
    if args.processes is not None:
        if args.experiment is not None:
            from surrogates.config import load_experiment

            # A bad config is told once, before any worker starts.
            load_experiment(args.experiment, args.override)
        _launch(args.processes, args.argv)
        return
    if args.resume is not None:
        from surrogates.workflow import resume

        folder = resume(args.resume, progress=not args.quiet, overrides=args.override)
    else:
        from surrogates.config import load_experiment
        from surrogates.workflow import train

        experiment = load_experiment(args.experiment, args.override)
        folder = train(experiment, progress=not args.quiet)
    _print_once(folder)


def _print_once(out: Path) -> None:
    """Print where the results are: once, from process 0, for a run of several processes."""
    from surrogates.training.sharding import is_writer

    if is_writer():
        print(out)


def _launch(processes: int, argv: list[str]) -> None:
    """The command `argv` again as `processes` local workers of one run (`--processes` left
    out)."""
    from surrogates.launch import launch

    launch([sys.executable, "-m", "surrogates", *_without_processes(argv)], processes)


def _without_processes(argv: list[str]) -> list[str]:
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--processes":
            skip = True
        elif not argument.startswith("--processes="):
            kept.append(argument)
    return kept


def _evaluate(args: argparse.Namespace) -> None:
    from rich.console import Console

    from surrogates.workflow import evaluate

    console = None if args.quiet else Console(stderr=True)
    out = evaluate(
        args.run_dir,
        data=args.data,
        stride_x=args.stride_x,
        console=console,
        overrides=args.override,
    )
    print(out)


def _benchmark(args: argparse.Namespace) -> None:
    from surrogates.suites import load_suite, run_suite, suite_runs

    if args.processes is not None:
        # A bad suite, or a bad experiment in it, is told once, before the workers start.
        suite_runs(load_suite(args.suite, args.override))
        _launch(args.processes, args.argv)
        return
    _print_once(
        run_suite(args.suite, overrides=args.override, progress=not args.quiet, reuse=args.reuse)
    )


def _models(args: argparse.Namespace) -> None:
    from surrogates.models import available, summary, wrapper_overhead, wrapper_summary, wrappers

    width = max(map(len, (*available(), *wrappers())))
    print("operators (task: operator):")
    for name in available("operator"):
        print(f"{name:{width}s} {summary(name)}")
    print("\npointwise models (task: physics):")
    for name in available("pointwise"):
        print(f"{name:{width}s} {summary(name)}")
    print("\nwrappers (model.wrappers):")
    for name in wrappers():
        print(f"{name:{width}s} {wrapper_summary(name)}")
        for line in wrapper_overhead(name):
            print(f"{'':{width}s} {line}")


def parser() -> argparse.ArgumentParser:
    """The `surrogates` command's argument parser (its sub-commands and their options)."""
    top = argparse.ArgumentParser(
        prog="surrogates", description="Neural PDE surrogates in JAX: data, models, training."
    )
    commands = top.add_subparsers(dest="command", required=True)

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

    train = commands.add_parser(
        "train", help="train and evaluate an experiment (experiments/*.yaml) in a new run folder"
    )
    train.add_argument("experiment", type=Path, nargs="?", help="experiment YAML")
    train.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. -o train.epochs=5 (repeatable; with --resume: "
        "eval.*, train.epochs, train.checkpoint_every, train.select)",
    )
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bar or tables")
    _processes_argument(train)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="re-evaluate a run's selected checkpoint (train.select), also on other files or grids",
    )
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    evaluate.add_argument("--data", type=Path, nargs="+", help="files to evaluate on instead")
    evaluate.add_argument("--stride-x", type=int, help="spatial stride (default: the run's)")
    evaluate.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an evaluation setting, e.g. -o eval.rollout_steps=20 (repeatable)",
    )
    evaluate.add_argument("-q", "--quiet", action="store_true", help="no tables")
    evaluate.set_defaults(run=_evaluate)

    benchmark = commands.add_parser(
        "benchmark", help="train and evaluate every experiment of a suite, compare them"
    )
    benchmark.add_argument(
        "suite", type=Path, help="suite YAML, e.g. experiments/suites/smoke.yaml"
    )
    benchmark.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of every experiment (repeatable)",
    )
    benchmark.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _processes_argument(benchmark)
    benchmark.add_argument(
        "--reuse",
        action="store_true",
        help="take finished runs of the same experiment and settings instead of training "
        "them again (continues an interrupted suite, or adds seeds)",
    )
    benchmark.set_defaults(run=_benchmark)

    models = commands.add_parser("models", help="list the registered models")
    models.set_defaults(run=_models)
    return top


def _processes_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="run as N local worker processes (JAX's multi-process runtime on this machine)",
    )


def restart_with_huge_pages(
    argv: Sequence[str],
    environ: Mapping[str, str] = os.environ,
    *,
    execve: Callable[[str, list[str], dict[str, str]], object] = os.execve,
    system: str = sys.platform,
    libc: str | None = None,
) -> None:
    """Start this command again as `python -m surrogates ARGV` with `GLIBC_TUNABLES` set to
    `HUGE_PAGES`, unless it is set already (a user's own value wins) or this is not Linux
    with glibc. Returns only when it does not restart."""
    if "GLIBC_TUNABLES" in environ or not system.startswith("linux"):
        return
    if (libc if libc is not None else platform.libc_ver()[0]) != "glibc":
        return
    arguments = [sys.executable, "-m", "surrogates", *argv]
    execve(sys.executable, arguments, {**environ, "GLIBC_TUNABLES": HUGE_PAGES})


def main(argv: Sequence[str] | None = None) -> int:
    """The command; called without `argv` (the `surrogates` command itself) it first makes
    sure of the huge-page setting (`restart_with_huge_pages`)."""
    if argv is None:
        restart_with_huge_pages(sys.argv[1:])
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from surrogates.launch import join_from_environment

        join_from_environment()
        args.run(args)
    except Interrupted as error:
        print(f"surrogates {args.command}: {error}", file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:
        print(f"surrogates {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except SurrogatesError as error:
        print(f"surrogates {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
