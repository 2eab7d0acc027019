"""Parser assembly and error handling of the ``edgeopt`` command."""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from collections.abc import Sequence

from edgeopt_plugins import __version__
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
    "_fit",
    "_recommend",
    "_fleet",
)


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and one line for usage errors (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full ``edgeopt`` parser (one sub-command per module in :data:`COMMAND_MODULES`)."""
    parser = _Parser(
        prog="edgeopt",
        description="Hardware-aware NAS across many edge devices. Without a command, runs `edgeopt overview`.",
    )
    parser.add_argument("--version", action="version", version=f"edgeopt-plugins {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"edgeopt_plugins.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``edgeopt`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help", "--version")):
        args = ["overview", *args]
    ns = parser.parse_args(args)
    try:
        return int(ns.handler(ns) or 0)
    except EdgeOptError as err:
        print(f"edgeopt {ns.command}: error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        where = f"{err.filename}: " if err.filename else ""
        print(f"edgeopt {ns.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES):
            print(f"edgeopt {ns.command}: error: {err.filename or ''}: {err.strerror}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print(f"edgeopt {ns.command}: interrupted", file=sys.stderr)
        return 130
