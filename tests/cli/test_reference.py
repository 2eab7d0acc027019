"""docs/cli.md is generated from the parsers; options are consistent across commands."""

from __future__ import annotations

from pathlib import Path

from edgeopt_plugins.cli import build_parser
from edgeopt_plugins.cli._docs import render
from edgeopt_plugins.cli._parser import subcommands

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_md_is_what_the_parsers_say():
    assert CLI_MD.read_text() == render(), "docs/cli.md is stale: run python -m edgeopt_plugins.cli._docs docs/cli.md"


def test_a_changed_option_changes_the_page():
    parser = build_parser()
    subcommands(parser)["recommend"].add_argument("--new-option", type=int, default=7, help="something new")
    page = render(parser)
    assert page != CLI_MD.read_text()
    assert "| `--new-option NEW_OPTION` | something new (default: 7) |" in page


def _option(command: str, option: str) -> bool:
    parser = build_parser()
    for word in command.split():
        parser = subcommands(parser)[word]
    return option in parser._option_string_actions


def test_long_commands_can_be_quieted_and_table_readers_take_data_dir():
    for command in ("overview", "data download", "profile", "predict", "plan-profile", "fit", "fleet"):
        assert _option(command, "--quiet"), command
    for command in ("overview", "data info", "monotonicity", "predict", "plan-profile", "fit", "fleet"):
        assert _option(command, "--data-dir"), command
    page = render()
    assert "`--quiet`" in page and "`monotonicity`, `predict`, `plan-profile`, `fit`, `fleet`." in page
