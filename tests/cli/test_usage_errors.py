"""Usage errors name what was misspelt, suggest the right name and point at the right help page."""

from __future__ import annotations

import pytest

from edgeopt_plugins.cli import build_parser
from edgeopt_plugins.cli._parser import UsageError, option_help, usage_message


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["recommend", "--model", "m", "--profile", "p.csv", "--latency-budjet-ms", "20"],
         "edgeopt recommend: error: unknown option --latency-budjet-ms; did you mean --latency-budget-ms? "
         "(see `edgeopt recommend --help`)"),
        (["recommend", "--model", "m", "--profile", "p.csv", "--latency-budjet-ms=20"],
         "edgeopt recommend: error: unknown option --latency-budjet-ms; did you mean --latency-budget-ms? "
         "(see `edgeopt recommend --help`)"),
        (["recomend", "--model", "m"],
         "edgeopt: error: unknown command 'recomend'; did you mean recommend? (see `edgeopt --help`)"),
        (["frobnicate"], "edgeopt: error: unknown command 'frobnicate' (see `edgeopt --help`)"),
        (["data", "inf"], "edgeopt data: error: unknown action 'inf'; did you mean info? (see `edgeopt data --help`)"),
        (["data", "info", "--jsn"],
         "edgeopt data info: error: unknown option --jsn; did you mean --json? (see `edgeopt data info --help`)"),
        (["fit", "--out", "m", "--confg", "tiny"],
         "edgeopt fit: error: unknown option --confg; did you mean --config? (see `edgeopt fit --help`)"),
        (["--fleet-size", "10"],  # no command: the overview's options
         "edgeopt overview: error: unknown option --fleet-size; did you mean --fleet? (see `edgeopt overview --help`)"),
        (["predict", "--method", "condtioned", "--profile", "p.csv", "--archs", "a.csv", "--out", "o.csv"],
         "edgeopt predict: error: argument --method: invalid choice: 'condtioned' (choose from 'proxy', "
         "'conditioned'); did you mean conditioned? (see `edgeopt predict --help`)"),
        (["fleet", "--simulated", "3", "--out", "f"],
         "edgeopt fleet: error: one of the arguments --latency-budget-ms --budget-percentile is required "
         "(see `edgeopt fleet --help`)"),
        (["data"], "edgeopt data: error: the following arguments are required: ACTION (see `edgeopt data --help`)"),
    ],
)
def test_usage_error_is_one_line_naming_the_culprit(run_cli, argv, line):
    code, out, err = run_cli(*argv)
    assert code == 2 and out == ""
    assert err == line + "\n"


def test_known_options_values_and_abbreviations_are_not_called_unknown():
    parser = build_parser()
    # A negative number is a value, an unambiguous prefix is argparse's own abbreviation: the
    # real problem (here: the missing --out) is reported, not a made-up unknown option.
    line = usage_message(parser, ["fit", "--seed", "-1", "--conf", "tiny"],
                         UsageError("the following arguments are required: --out"))
    assert line == "edgeopt fit: error: the following arguments are required: --out (see `edgeopt fit --help`)"
    line = usage_message(parser, ["fleet", "--measure-cmd", "-x {arch}", "--", "--whatever"], UsageError("boom"))
    assert line == "edgeopt fleet: error: boom (see `edgeopt fleet --help`)"


def test_every_option_help_names_its_default():
    for command, sub in _all_parsers(build_parser()):
        for action in sub._actions:
            if action.option_strings and action.default not in (None, False, [], "==SUPPRESS=="):
                assert "default" in option_help(action), f"edgeopt {command} {action.option_strings[0]}"


def test_fit_help_names_the_default_config(capsys):
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["fit", "--help"])
    assert caught.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "tiny (tests, seconds) (default: default)" in text
    assert "examples: edgeopt fit --space nb201 --out model/" in text


def _all_parsers(parser, prefix=""):
    from edgeopt_plugins.cli._parser import subcommands

    for name, sub in subcommands(parser).items():
        yield f"{prefix}{name}", sub
        yield from _all_parsers(sub, f"{prefix}{name} ")
