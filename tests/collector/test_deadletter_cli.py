"""``logwarden deadletter list|show|replay``: inspect a rejected record, fix it, resubmit it."""

from __future__ import annotations

import argparse

import orjson
import requests

from logwarden.commands import deadletter
from tests.collector.helpers import RunningCollector, collector_config, record, spooled_rows


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    deadletter.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["deadletter", *argv])
    return args.func(args)


def test_list_show_fix_and_replay(tmp_path, capsys):
    data = tmp_path / "data"
    bad = orjson.dumps(record(1, level="LOUD"))
    with RunningCollector(data, collector_config()) as collector:
        answer = requests.post(
            f"{collector.url}/v1/logs", data=bad + b"\n" + orjson.dumps(record(2)), timeout=10
        )
        assert answer.json()["rejected"] == 1

        assert cli("list", "--data-dir", str(data)) == 0
        listed = capsys.readouterr().out
        assert "schema_enum" in listed and "level: " in listed
        letter_id = listed.split()[0]

        assert cli("show", letter_id, "--data-dir", str(data), "--raw") == 0
        assert capsys.readouterr().out.encode().strip() == bad

        # replaying unchanged is refused again, and the letter stays pending
        assert cli("replay", letter_id, "--data-dir", str(data), "--url", collector.url) == 1
        assert "refused" in capsys.readouterr().out

        fixed = tmp_path / "fixed.json"
        fixed.write_bytes(bad.replace(b"LOUD", b"ERROR"))
        assert (
            cli("replay", letter_id, "--data-dir", str(data), "--url", collector.url, "--fixed", str(fixed))
            == 0
        )
        assert "1 accepted" in capsys.readouterr().out

        assert cli("list", "--data-dir", str(data)) == 0
        assert "no dead letters" in capsys.readouterr().out
    assert sorted((r["message"], r["level"]) for r in spooled_rows(data)) == [("m1", "ERROR"), ("m2", "INFO")]
