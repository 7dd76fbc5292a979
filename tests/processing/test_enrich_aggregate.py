"""Enrichment from the service inventory, and the per-minute and per-user aggregates."""
from __future__ import annotations

import pyarrow as pa
import pytest

from logwarden.schemas import SERVICE_INVENTORY_PATH
from logwarden.common.yamlconf import ConfigError
from logwarden.processing.aggregate import minute_aggregates, user_errors
from logwarden.processing.enrich import Inventory
from tests.monitoring.helpers import rec, table


def templated(records: list[dict], template_ids: list[str]) -> pa.Table:
    base = table(records)
    return base.append_column("template_id", pa.array(template_ids, pa.string()))


def test_inventory_adds_team_tier_environment_and_host():
    inventory = Inventory.load(SERVICE_INVENTORY_PATH)
    records = table([rec(0, "payment-service", attributes='{"host":"pay-2","zone":"a"}'), rec(1, "unknown-svc")])
    enriched = inventory.enrich(records).select(["service", "team", "tier", "environment", "host"]).to_pylist()
    assert enriched == [
        {"service": "payment-service", "team": "payments", "tier": 1, "environment": "production", "host": "pay-2"},
        {"service": "unknown-svc", "team": "unassigned", "tier": 3, "environment": "production", "host": None},
    ]


def test_a_bad_inventory_is_refused_with_its_line(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text("services:\n  api: {team: edge, owner: bob}\n")
    with pytest.raises(ConfigError) as caught:
        Inventory.load(path)
    assert caught.value.line == 2


def test_minute_aggregates_rank_templates_and_count_new_ones():
    records = [rec(i, "api", "ERROR" if i < 3 else "INFO", duration_ms=float(i), user_id=f"u{i % 2}")
               for i in range(10)]
    ids = ["T-a"] * 5 + ["T-b"] * 3 + ["T-c"] * 2
    rows = minute_aggregates(templated(records, ids), frozenset({"T-c"})).to_pylist()
    assert len(rows) == 1
    row = rows[0]
    assert (row["count"], row["count_error"], row["distinct_users"]) == (10, 3, 2)
    assert row["error_rate"] == pytest.approx(0.3)
    assert row["top_templates"] == ["T-a", "T-b", "T-c"] and row["new_templates"] == 1


def test_user_errors_count_errors_per_user_and_minute():
    records = table([rec(0, "auth", "ERROR", user_id="u1"), rec(5, "auth", "CRITICAL", user_id="u1"),
                     rec(70, "auth", "ERROR", user_id="u1"), rec(1, "auth", "INFO", user_id="u2"),
                     rec(2, "auth", "ERROR")])
    rows = sorted((r["user_id"], r["bucket"].minute, r["errors"]) for r in user_errors(records).to_pylist())
    assert rows == [("u1", 0, 2), ("u1", 1, 1)]
