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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        # Expected user errors: one clear line, no traceback.
        print(f"eegattn {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
