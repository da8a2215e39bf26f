"""The ``eegattn`` command line.

Every subcommand lives in ``eegattn/commands/<name>.py`` and exposes ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Those modules import only the standard
library at module level; torch, mne, braindecode and eegdash are imported inside ``run`` so
that ``eegattn --help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from importlib import import_module

# Order is the order shown in --help.
COMMANDS = (
    "demo",
    "synth",
    "preprocess",
    "train",
    "pretrain",
    "package",
    "validate_submission",
    "baseline",
    "cache",
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


def format_warning_line(message) -> str:
    """``eegattn: warning: <message>`` on one line (no source path, no code line)."""
    text = " ".join(str(message).split())
    return f"eegattn: warning: {text}\n"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    stream = sys.stderr if file is None else file
    if stream is None:  # pythonw: no console
        return
    try:
        stream.write(format_warning_line(message))
    except OSError:  # a closed pipe must not turn a warning into a crash
        pass


@contextlib.contextmanager
def clean_warnings():
    """While the CLI runs, warnings print as one line, ``eegattn: warning: <message>``.

    Python's default shows ``path/to/module.py:123: Category: message`` and then the code line,
    which tells a user of the command line nothing. Only the display changes (the filters stay
    as they are), and only inside the CLI: importing eegattn leaves ``warnings`` alone.
    """
    saved_show, saved_format = warnings.showwarning, warnings.formatwarning
    warnings.showwarning = _show_warning
    warnings.formatwarning = lambda message, *a, **k: format_warning_line(message)
    try:
        yield
    finally:
        warnings.showwarning, warnings.formatwarning = saved_show, saved_format


def run_guarded(prog: str, run, args: argparse.Namespace) -> int:
    """Call ``run(args)``; expected user errors print one line (no traceback), exit code 2;
    Ctrl-C prints one line, exit code 130; warnings print as one line each
    (``clean_warnings``)."""
    with clean_warnings():
        try:
            return int(run(args) or 0)
        except (ValueError, FileNotFoundError, FileExistsError) as err:
            print(f"{prog}: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # the command has cleaned up on its way out
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130


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
