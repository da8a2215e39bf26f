"""The ``eegattn`` command line.

Every subcommand lives in ``eegattn/commands/<name>.py`` and exposes ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Those modules import only the standard
library at module level; torch, mne, braindecode and eegdash are imported inside ``run`` so
that ``eegattn --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

# Order is the order shown in --help.
COMMANDS = (
    "demo",
    "synth",
    "preprocess",
    "train",
    "package",
    "validate_submission",
    "baseline",
)


def _command_name(module_name: str) -> str:
    return module_name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    from eegattn import __version__

    parser = argparse.ArgumentParser(
        prog="eegattn",
        description="EEG attention toolkit: synthetic HBN releases, preprocessing, challenge "
        "training, submission packaging and cross-domain baselines.",
    )
    parser.add_argument("--version", action="version", version=f"eegattn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS:
        module = import_module(f"eegattn.commands.{module_name}")
        p = sub.add_parser(
            _command_name(module_name), help=module.HELP, description=module.HELP
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def run_guarded(prog: str, run, args: argparse.Namespace) -> int:
    """Call ``run(args)``; expected user errors print one line (no traceback), exit code 2."""
    try:
        return int(run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


def script_main(command: str, description: str, argv: list[str] | None = None,
                **defaults) -> int:
    """Entry point of the thin scripts in ``pipelines/`` and ``challenges/``: the subcommand
    ``command`` with ``defaults`` fixed (e.g. ``challenge=1``) and hidden from the options."""
    module = import_module(f"eegattn.commands.{command}")
    parser = argparse.ArgumentParser(description=description)
    module.add_arguments(parser, **defaults)
    args = parser.parse_args(argv)
    for key, value in defaults.items():
        setattr(args, key, value)
    return run_guarded(parser.prog, module.run, args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    return run_guarded(f"eegattn {args.command}", args._run, args)


if __name__ == "__main__":
    sys.exit(main())
