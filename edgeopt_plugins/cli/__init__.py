"""The ``edgeopt`` command line.

Every command turns bad input into one line on stderr and exit code 2, never a
traceback; files are written atomically.
"""

from edgeopt_plugins.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
