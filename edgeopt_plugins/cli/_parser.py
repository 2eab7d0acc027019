"""The argparse layer of ``edgeopt``: usage errors as one line that names the culprit.

argparse reports a misspelt option late and vaguely: ``edgeopt recommend ...
--latency-budjet-ms 20`` fails with "the following arguments are required:
--latency-budget-ms", and a misspelt command with the list of every command. Here a
usage error first looks for what was misspelt and says so, with the closest valid
name and the help page to read::

    edgeopt recommend: error: unknown option --latency-budjet-ms; did you mean --latency-budget-ms? (see `edgeopt recommend --help`)
"""

from __future__ import annotations

import argparse
import difflib
import re
import textwrap
from collections.abc import Sequence
from typing import Any

from edgeopt_plugins.exceptions import InputError

__all__ = ["HelpFormatter", "Parser", "UsageError", "option_help", "subcommands", "usage_message"]

#: What argparse itself takes for a negative number rather than an option.
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")
#: How a help text already names its default: "(default 3)", "(default: x)", "; default: x", "(ours, default)".
_NAMES_DEFAULT = re.compile(r"\(default\b|\bdefault:|, default\)")
_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>.*?)' \(choose from (?P<choices>.*)\)$")


class UsageError(InputError):
    """A command line argparse rejected; :func:`usage_message` turns it into the line to print."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def option_help(action: argparse.Action) -> str:
    """An option's help text, ending with its default when the text does not name one.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> option_help(parser.add_argument("--seed", type=int, default=0, help="seed of every random choice"))
        'seed of every random choice (default: 0)'
    """
    text = action.help or ""
    default = action.default
    unset = default is None or default is False or default is argparse.SUPPRESS or default in ([], ())
    if action.option_strings and not unset and not _NAMES_DEFAULT.search(text):
        text += f" (default: {_shown(default)})"
    return text


class HelpFormatter(argparse.HelpFormatter):
    """Paragraphs of a description are re-wrapped; indented lines (examples) are kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in textwrap.dedent(text).strip().split("\n\n"):
            lines = paragraph.splitlines()
            if all(line.startswith("  ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(textwrap.fill(" ".join(line.strip() for line in lines), width,
                                                initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(paragraphs)

    def _get_help_string(self, action: argparse.Action) -> str:
        return option_help(action).replace("%", "%%")


class Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing usage and exiting.

    Help pages use :class:`HelpFormatter`: every option names its default, examples keep their lines.
    """

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - argparse's own signature
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """``{name: parser}`` of ``parser``'s sub-commands (empty when it has none)."""
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its sub-commands there
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def _did_you_mean(word: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _known(option: str, parser: argparse.ArgumentParser) -> bool:
    """Whether argparse would take ``option`` (an exact name or, for long options, an unambiguous prefix)."""
    names = parser._option_string_actions  # noqa: SLF001 - argparse's own table of option names
    if option in names:
        return True
    if parser.allow_abbrev and option.startswith("--"):
        return sum(name.startswith(option) for name in names if name.startswith("--")) == 1
    return False


def _unknown_option(tokens: Sequence[str], parser: argparse.ArgumentParser) -> str | None:
    """The first token of ``tokens`` that looks like an option ``parser`` does not have."""
    for token in tokens:
        if token == "--":
            return None
        if not token.startswith("-") or token == "-" or " " in token or _NEGATIVE_NUMBER.match(token):
            continue
        option = token.split("=", 1)[0]
        if not _known(option, parser):
            return option
    return None


def usage_message(parser: argparse.ArgumentParser, argv: Sequence[str], error: UsageError) -> str:
    """The one line to print for ``error``, raised while ``parser`` parsed ``argv``.

    It names the sub-command whose options were wrong, prefers "unknown option/command X;
    did you mean Y?" to argparse's consequences of it, and points at that sub-command's help.

    Example:
        >>> from edgeopt_plugins.cli import build_parser
        >>> usage_message(build_parser(), ["fit", "--confg", "tiny"], UsageError("..."))
        'edgeopt fit: error: unknown option --confg; did you mean --config? (see `edgeopt fit --help`)'
    """
    prog, current, rest = parser.prog, parser, list(argv)
    message = error.message
    while (commands := subcommands(current)) and rest:
        options = []
        while rest and rest[0].startswith("-"):
            options.append(rest.pop(0))
        if _unknown_option(options, current) is not None or not rest:
            rest = options + rest
            break
        word = rest.pop(0)
        if word not in commands:
            kind = "command" if current is parser else "action"
            return (f"{prog}: error: unknown {kind} {word!r}{_did_you_mean(word, list(commands))} "
                    f"(see `{prog} --help`)")
        prog, current = f"{prog} {word}", commands[word]
    unknown = _unknown_option(rest, current)
    if unknown is not None:
        long_names = [n for n in current._option_string_actions if n.startswith("--")]  # noqa: SLF001
        message = f"unknown option {unknown}{_did_you_mean(unknown, long_names)}"
    elif match := _INVALID_CHOICE.search(message):
        choices = re.findall(r"'(.*?)'", match["choices"])
        message += _did_you_mean(match["value"], choices)
    return f"{prog}: error: {message} (see `{prog} --help`)"
