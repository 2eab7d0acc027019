"""docs/cli.md, generated from the parsers, so that the reference and ``--help`` never disagree.

Run ``python -m edgeopt_plugins.cli._docs docs/cli.md`` after changing an option, a help
text, a description or an example of a command (the test suite fails until you do). Without
a path it prints the page.

Each command contributes its ``description`` (the prose), its options with their help (and
default), and the ``examples:`` of its ``epilog``; the page's opening lists which commands read
the benchmark data, show progress and print JSON, from the options they really have.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from edgeopt_plugins._io import write_text
from edgeopt_plugins.cli._main import build_parser
from edgeopt_plugins.cli._parser import HelpFormatter, option_help, subcommands

__all__ = ["render"]

WIDTH = 100
GENERATED = ("<!-- generated from the parsers in edgeopt_plugins/cli/ by "
             "`python -m edgeopt_plugins.cli._docs docs/cli.md`: edit those, not this page -->")


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """``(name, parser, one-line help)`` of every command that runs something (``data info``, not ``data``)."""
    helps = {}
    for action in parser._actions:  # noqa: SLF001 - the one-line help of each sub-command lives there
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            helps = {choice.dest: choice.help for choice in action._choices_actions}  # noqa: SLF001
    for name, sub in subcommands(parser).items():
        if subcommands(sub):
            yield from _commands(sub, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", sub, helps.get(name) or ""


def _has(sub: argparse.ArgumentParser, option: str) -> bool:
    return option in sub._option_string_actions  # noqa: SLF001


def _listing(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _prose(text: str | None) -> str:
    """A description as markdown: paragraphs kept, ``docs/x.md`` turned into links."""
    if not text:
        return ""
    paragraphs = [" ".join(line.strip() for line in p.splitlines()) for p in text.strip().split("\n\n")]
    return re.sub(r"docs/([\w-]+\.md)", r"[\1](\1)", "\n\n".join(paragraphs))


def _examples(epilog: str | None) -> list[str]:
    if not epilog or "examples:" not in epilog:
        return []
    body = epilog.split("examples:", 1)[1]
    return [line[2:] for line in body.splitlines() if line.startswith("  ")]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _options(sub: argparse.ArgumentParser) -> list[str]:
    formatter = HelpFormatter(sub.prog, width=WIDTH)
    lines: list[str] = []
    for group in sub._action_groups:  # noqa: SLF001 - argparse's own grouping of the options
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS and a.dest != "help"]  # noqa: SLF001
        if not actions:
            continue
        if group.title not in ("options", "optional arguments"):
            lines += [f"*{group.title}*", ""]
        lines += ["| option | what it does |", "|---|---|"]
        for action in actions:
            invocation = formatter._format_action_invocation(action)  # noqa: SLF001 - "--space SPACE", "--quiet, -q"
            required = " (required)" if action.required else ""
            lines.append(f"| `{_cell(invocation)}` | {_cell(option_help(action))}{required} |")
        lines.append("")
    return lines


def _usage(sub: argparse.ArgumentParser) -> str:
    formatter = HelpFormatter(sub.prog, width=WIDTH)
    formatter.add_usage(sub.usage, sub._actions, sub._mutually_exclusive_groups)  # noqa: SLF001
    return formatter.format_help().strip()


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The markdown of docs/cli.md for ``parser`` (default: the ``edgeopt`` parser)."""
    parser = parser or build_parser()
    commands = list(_commands(parser))
    with_data = [n for n, sub, _ in commands if _has(sub, "--data-dir")]
    with_quiet = [n for n, sub, _ in commands if _has(sub, "--quiet")]
    with_json = [n for n, sub, _ in commands if _has(sub, "--json")]
    with_space = [n for n, sub, _ in commands if _has(sub, "--space")]
    lines = [
        GENERATED, "", "# The `edgeopt` command", "",
        "`edgeopt --help` lists the commands and `edgeopt COMMAND --help` their options; this page is generated "
        "from the same parsers. Without a command, `edgeopt` runs `edgeopt overview`; `edgeopt --version` prints "
        "the version.", "",
        "- Bad input gives one line on stderr and exit code 2, never a traceback; a misspelt option or command is "
        "named, with the closest valid one and the help page to read. Files are written atomically.",
        f"- Commands that read the benchmark tables take `--data-dir` (else `$EDGEOPT_DATA_DIR`, else the user "
        f"cache; see [data.md](data.md)): {_listing(with_data)}.",
        f"- Commands that take a while show progress bars and status lines, which `--quiet` turns off: "
        f"{_listing(with_quiet)}.",
        f"- Results go to CSV/JSON files for scripts, comparisons to PNG; these commands print JSON with "
        f"`--json`: {_listing(with_json)}.",
        f"- `--space` takes a built-in space or a space of your own, the same way in every command: "
        f"`module:attribute` (a `SearchSpace`, or a function returning one; the current folder is importable) or a "
        f"spec `.json` file (see [spaces.md](spaces.md#your-own-search-space) and "
        f"[tutorial-own-space.md](tutorial-own-space.md)); a space of your own has no benchmark table, so commands "
        f"that read one take `--tables` (your profiles): {_listing(with_space)}.",
        "", "| command | what it does |", "|---|---|",
    ]
    for name, _, summary in commands:
        shown = "`edgeopt` / `edgeopt overview`" if name == "overview" else f"`edgeopt {name}`"
        lines.append(f"| {shown} | {_cell(summary)} |")
    for name, sub, _ in commands:
        lines += ["", f"## {name}" + (" (the default)" if name == "overview" else ""), ""]
        if sub.description:
            lines += [_prose(sub.description), ""]
        lines += ["```text", _usage(sub), "```", ""]
        lines += _options(sub)
        examples = _examples(sub.epilog)
        if examples:
            lines += ["Examples:", "", "```bash", *examples, "```"]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the page, or write it to the path given."""
    args = list(sys.argv[1:] if argv is None else argv)
    page = render()
    if not args:
        sys.stdout.write(page)
        return 0
    write_text(Path(args[0]), page)
    print(f"wrote {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
