"""``logwarden rules check FILE``: validate a rules file.
``logwarden rules test FILE --data PATH``: replay logs through the rules and print the alerts as JSON lines."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``rules`` subcommand group."""
    parser = subparsers.add_parser("rules", help="work with rules files")
    actions = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a rules file")
    check.add_argument("file", help="the rules file (e.g. schemas/anomaly_schema.yaml)")
    check.set_defaults(func=run_check)
    test = actions.add_parser("test", help="replay logs through a rules file offline; print the alerts as JSON lines")
    test.add_argument("file", help="the rules file")
    source = test.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a log file of any supported format")
    source.add_argument("--lake", action="store_true", help="replay the lake of --data-dir (with --since/--until)")
    test.add_argument("--data-dir", default="./data", help="the data directory holding lake/ (default ./data)")
    test.add_argument("--since", help="with --lake: first event time, RFC 3339 (inclusive)")
    test.add_argument("--until", help="with --lake: last event time, RFC 3339 (exclusive)")
    test.add_argument("--batch-records", type=int, default=50_000, help="records per batch (default 50000)")
    test.add_argument("--resolved", action="store_true", help="also print resolved events (with a status field)")
    test.set_defaults(func=run_test)


def run_check(args: argparse.Namespace) -> int:
    """Exit 0 and list the rules when the file is valid; exit 2 with the error otherwise."""
    from logwarden.monitoring import load_rules

    rules = load_rules(args.file)  # a ConfigError is printed by the CLI with exit status 2
    for rule in rules.rules:
        state = "" if rule.enabled else " (disabled)"
        print(f"{rule.name}: {rule.kind}, {rule.severity} -> {', '.join(rule.channels or rules.routing[rule.severity])}"
              f"{state}")
    print(f"{args.file}: {len(rules.rules)} rules OK", file=sys.stderr)
    return 0


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run_test(args: argparse.Namespace) -> int:
    """Print the alerts the rules raise on the data, one JSON object a line; a summary on stderr."""
    from logwarden.monitoring import load_rules
    from logwarden.monitoring.replay import (ReplayStats, alert_lines, batches, file_rows, lake_table, replay, rows_table,
                                   rules_use_templates)

    rules = load_rules(args.file)
    stats = ReplayStats()
    if args.lake:
        table = lake_table(args.data_dir, _moment(args.since), _moment(args.until))
        stats.records = table.num_rows
    else:
        table = rows_table(file_rows(args.data, stats))
    anomalies = replay(rules, batches(table, args.batch_records, rules_use_templates(rules)), stats)
    lines = alert_lines(anomalies, include_resolved=args.resolved)
    out = sys.stdout
    for line in lines:
        out.write(line + "\n")
    out.flush()
    print(f"{stats.records} records ({stats.rejected} rejected) in {stats.batches} batches: {len(lines)} alerts",
          file=sys.stderr)
    return 0
