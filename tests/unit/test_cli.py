import argparse

from seecam.cli import build_parser


def _parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser and every subcommand's, by command line."""
    found = {parser.prog: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _parsers(sub)
    return found


def test_every_option_and_argument_of_every_command_has_help():
    missing = [f"{prog} {action.option_strings or action.dest}"
               for prog, parser in _parsers(build_parser()).items() for action in parser._actions
               if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()]
    assert missing == []


def test_defaults_are_shown_in_the_help():
    text = _parsers(build_parser())["seecam ui"].format_help()
    assert "5000" in text  # the port a user gets without --port
