"""Parser assembly and error handling of the ``edgeopt`` command."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from edgeopt_plugins import __version__
from edgeopt_plugins._io import printable
from edgeopt_plugins.cli._parser import Parser, UsageError, usage_message
from edgeopt_plugins.exceptions import EdgeOptError

__all__ = ["build_parser", "main"]

#: Modules of ``edgeopt_plugins.cli`` that each add one command with ``register(subparsers)``.
COMMAND_MODULES = (
    "_overview",
    "_data",
    "_space",
    "_profile",
    "_monotonicity",
    "_predict",
    "_plan",
    "_fit",
    "_recommend",
    "_fleet",
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``edgeopt`` parser (one sub-command per module in :data:`COMMAND_MODULES`).

    Its usage errors raise :class:`~edgeopt_plugins.cli._parser.UsageError`; :func:`main` turns
    them into one line and exit code 2.
    """
    parser = Parser(
        prog="edgeopt",
        description="Hardware-aware NAS across many edge devices. Without a command, runs `edgeopt overview`.",
    )
    parser.add_argument("--version", action="version", version=f"edgeopt-plugins {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"edgeopt_plugins.cli.{name}").register(sub)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program stands so that every cleanup runs (temporary files, workers)."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the block runs, SIGTERM unwinds like Ctrl-C instead of killing the process on the spot."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``edgeopt`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help", "--version")):
        args = ["overview", *args]
    try:
        ns = parser.parse_args(args)
    except UsageError as err:
        print(usage_message(parser, args, err), file=sys.stderr)
        return 2
    try:
        with _sigterm_unwinds():
            return int(ns.handler(ns) or 0)
    except EdgeOptError as err:
        print(f"edgeopt {ns.command}: error: {printable(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system's word (a full disk, a quota, a permission): one line naming the file
        where = f"{err.filename}: " if err.filename else ""
        print(f"edgeopt {ns.command}: error: {printable(where)}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        terminated = isinstance(err, _Terminated)
        print(f"edgeopt {ns.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
