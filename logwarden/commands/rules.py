"""``logwarden rules check FILE``: validate a rules file."""
from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``rules`` subcommand group."""
    parser = subparsers.add_parser("rules", help="work with rules files")
    actions = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a rules file")
    check.add_argument("file", help="the rules file (e.g. schemas/anomaly_schema.yaml)")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Exit 0 and list the rules when the file is valid; exit 2 with the error otherwise."""
    from monitoring import load_rules

    rules = load_rules(args.file)  # a ConfigError is printed by the CLI with exit status 2
    for rule in rules.rules:
        state = "" if rule.enabled else " (disabled)"
        print(f"{rule.name}: {rule.kind}, {rule.severity} -> {', '.join(rule.channels or rules.routing[rule.severity])}"
              f"{state}")
    print(f"{args.file}: {len(rules.rules)} rules OK", file=sys.stderr)
    return 0
