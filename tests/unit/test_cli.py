"""Every `driftline` option says what it does (`driftline <command> --help`)."""

from __future__ import annotations

import argparse

from driftline.cli import ALERTING_COMMANDS, build_parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_option_of_every_subcommand_has_help_text():
    commands = _subcommands(build_parser())
    assert {"score", "suite", "alerts", "demo", "monitor", "airflow"} <= set(commands)
    missing = [
        f"{name} {'/'.join(action.option_strings)}"
        for name, sub in commands.items()
        for action in sub._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert not missing, f"options without help=: {missing}"


def test_the_alerting_commands_exist():
    assert set(ALERTING_COMMANDS) <= set(_subcommands(build_parser()))
