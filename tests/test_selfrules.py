"""The monitor monitors itself (issue 17): each self-rule fires and resolves on a fake clock, its
thresholds come from ``monitoring.self_rules``, and a ``channel_failing`` alert goes through the real
router and outbox to the channels that still work."""
from __future__ import annotations

import io

import pytest

from logwarden.alerting import ConsoleNotifier, build_alerting
from logwarden.alerting.outbox import Outbox
from logwarden.common.yamlconf import ConfigError
from logwarden.monitoring.anomaly import FIRING, RESOLVED
from logwarden.monitoring.metrics import DetectorMetrics
from logwarden.monitoring.self_rules import RULE_NAMES, SelfRulesConfig
from logwarden.processing.quarantine import QuarantinedBatch
from logwarden.selfrules import SelfRules, SelfState
from logwarden.settings import parse_settings
from logwarden.testing.receivers import ProtocolServer
from tests.alerting.conftest import FAST, anomaly, wait_for

T0 = 1_800_000_000.0
GIB = 1024 ** 3


def only(config: SelfRulesConfig, rule: str) -> SelfRules:
    """The self-rules of ``config`` with every rule but ``rule`` off."""
    return SelfRules(config, [r for r in SelfRules(config).rules if r.name == rule])


def events(anomalies) -> list[tuple[str, str, str]]:
    return [(a.rule, a.key, a.status) for a in anomalies]


def test_ingestion_stopped_fires_after_the_threshold_and_resolves_when_records_come_again():
    rules = only(SelfRulesConfig(ingestion_stopped_after=300), "ingestion_stopped")
    assert rules.check(SelfState(now=T0 + 1000, sources_known=False, last_ingest_at=None)) == []
    assert rules.check(SelfState(now=T0 + 299, sources_known=True, last_ingest_at=T0)) == []
    fired = rules.check(SelfState(now=T0 + 300, sources_known=True, last_ingest_at=T0))
    assert events(fired) == [("ingestion_stopped", "collector", FIRING)]
    assert fired[0].severity == "CRITICAL" and fired[0].tenant == "*" and fired[0].kind == "self"
    assert fired[0].action and "300s" in fired[0].description
    assert rules.check(SelfState(now=T0 + 310, sources_known=True, last_ingest_at=T0)) == []  # once
    resolved = rules.check(SelfState(now=T0 + 320, sources_known=True, last_ingest_at=T0 + 319))
    assert events(resolved) == [("ingestion_stopped", "collector", RESOLVED)]
    assert resolved[0].dedup_key == fired[0].dedup_key and resolved[0].id != fired[0].id


def test_spool_backlog_fires_when_it_grew_for_the_window_not_when_it_shrinks():
    rules = only(SelfRulesConfig(backlog_for=600, backlog_min_batches=10), "spool_backlog")

    def at(minute: int, depth: int, oldest_minute: int = 0) -> list:
        return rules.check(SelfState(now=T0 + 60 * minute, spool_depth=depth,
                                     spool_oldest_age=60.0 * (minute - oldest_minute)))

    for minute in range(10):  # growing, but its oldest batch has not waited 10 minutes yet
        assert at(minute, 10 + minute) == []
    assert events(at(10, 25)) == [("spool_backlog", "spool", FIRING)]
    assert at(15, 22) == []  # shrinking a little: still a backlog, still firing
    assert events(at(16, 3)) == [("spool_backlog", "spool", RESOLVED)]

    shrinking = only(SelfRulesConfig(backlog_for=600, backlog_min_batches=10), "spool_backlog")
    for minute in range(12):  # old, but draining: processing keeps up
        assert shrinking.check(SelfState(now=T0 + 60 * minute, spool_depth=100 - 5 * minute,
                                         spool_oldest_age=60.0 * minute + 600)) == []


def test_disk_low_fires_under_the_mark_and_resolves_only_clearly_above_it():
    rules = only(SelfRulesConfig(disk_low_water=GIB), "disk_low")
    assert rules.check(SelfState(now=T0, data_dir="/d", free_disk_bytes=2 * GIB)) == []
    fired = rules.check(SelfState(now=T0 + 1, data_dir="/d", free_disk_bytes=GIB // 2))
    assert events(fired) == [("disk_low", "/d", FIRING)] and fired[0].value == GIB // 2
    assert rules.check(SelfState(now=T0 + 2, data_dir="/d", free_disk_bytes=GIB + 1)) == []  # hysteresis
    assert events(rules.check(SelfState(now=T0 + 3, data_dir="/d", free_disk_bytes=2 * GIB))) == \
        [("disk_low", "/d", RESOLVED)]


def test_dask_worker_lost_fires_when_not_replaced_and_not_for_a_quick_restart():
    rules = only(SelfRulesConfig(worker_lost_for=120), "dask_worker_lost")

    def at(seconds: float, workers: int | None) -> list:
        return rules.check(SelfState(now=T0 + seconds, dask_workers=workers, dask_workers_expected=2))

    assert at(0, 2) == [] and at(5, 1) == [] and at(10, 2) == []  # the nanny restarted it
    assert at(20, 1) == [] and at(139, 1) == []
    fired = at(140, 1)
    assert events(fired) == [("dask_worker_lost", "dask", FIRING)] and fired[0].window_start.endswith("00:20Z")
    assert at(150, None) == []  # the scheduler does not answer: still firing, nothing new
    assert events(at(160, 2)) == [("dask_worker_lost", "dask", RESOLVED)]


def test_ray_actor_lost_from_what_the_pool_recorded():
    metrics = DetectorMetrics()
    rules = only(SelfRulesConfig(worker_lost_for=120), "ray_actor_lost")

    def at(seconds: float) -> list:
        unavailable = {f"{rule}/{shard}": since for (rule, shard), since in metrics.unavailable_since().items()}
        return rules.check(SelfState(now=T0 + seconds, actors_unavailable=unavailable))

    metrics.actor_failed("error_spike", 1, now=T0)
    metrics.actor_failed("error_spike", 1, now=T0 + 30)  # still the first failure that counts
    assert at(119) == []
    assert events(at(120)) == [("ray_actor_lost", "error_spike/1", FIRING)]
    metrics.reply("error_spike", 1, {"max_event_us": 1, "late_events": 3}, [])
    assert events(at(121)) == [("ray_actor_lost", "error_spike/1", RESOLVED)]
    text = b"".join(m.name.encode() for m in metrics.collect())
    assert b"logwarden_detector_late_events" in text


def test_batch_quarantined_follows_the_configuration():
    entry = QuarantinedBatch("1700000000000-x-000001", "unreadable", "cannot be read")
    assert events(SelfRules(SelfRulesConfig()).quarantined(entry)) == \
        [("batch_quarantined", "1700000000000-x-000001", FIRING)]
    assert SelfRules(SelfRulesConfig(disabled=("batch_quarantined",))).quarantined(entry) == []
    assert SelfRules(SelfRulesConfig(enabled=False)).rules == []


def test_thresholds_from_the_configuration_file_and_refusals_located():
    settings = parse_settings("monitoring:\n  self_rules:\n    backlog_for: 2m\n    disk_low_water: 512MiB\n"
                              "    disabled: [disk_low]\n", "lw.yaml")
    config = settings.monitoring.self_rules
    assert (config.backlog_for, config.disk_low_water, config.active("disk_low")) == (120.0, 512 * 1024 ** 2, False)
    assert parse_settings("", "lw.yaml").monitoring.self_rules == SelfRulesConfig()
    with pytest.raises(ConfigError) as refused:
        parse_settings("monitoring:\n  self_rules:\n    backlog_for: soon\n", "lw.yaml")
    assert str(refused.value).startswith("lw.yaml:3: monitoring.self_rules.backlog_for: expected a duration")
    with pytest.raises(ConfigError) as refused:
        parse_settings("monitoring:\n  self_rules:\n    disabled: [disk_low, everything]\n", "lw.yaml")
    assert "monitoring.self_rules.disabled.1: unknown self-rule 'everything'" in str(refused.value)


def test_channel_failing_goes_through_the_router_to_the_other_channels(tmp_path):
    slack, pagerduty = ProtocolServer(), ProtocolServer()
    pagerduty.up()
    service = build_alerting({**FAST, "slack": {"webhook_url": f"{slack.url}/services/T0/B0/X"},
                              "pagerduty": {"routing_key": pagerduty.PD_ROUTING_KEY,
                                            "events_url": f"{pagerduty.url}/v2/enqueue"}},
                             {"CRITICAL": ["pagerduty"], "HIGH": ["slack"]}, tmp_path / "alerts",
                             console=ConsoleNotifier(io.StringIO()))
    service.start()
    try:
        service.dispatch([anomaly(key="api")])  # HIGH: to Slack, which is down
        since = wait_for(lambda: service.metrics.failing_since().get("slack"), timeout=10)
        rules = only(SelfRulesConfig(channel_failing_for=300), "channel_failing")

        def state(now: float) -> SelfState:
            return SelfState(now=now, channels_failing=service.metrics.failing_since(), channels=tuple(service.workers))

        assert rules.check(state(since + 299)) == []
        fired = rules.check(state(since + 300))
        assert events(fired) == [("channel_failing", "slack", FIRING)]
        service.dispatch(fired)
        wait_for(lambda: any("channel_failing" in str(body) for body in pagerduty.posts("/v2/")), timeout=10)
        routed = [(e["rule"], e["channel"], e["status"], e["tenant"]) for e in Outbox(tmp_path / "alerts" /
                                                                                       "outbox.jsonl")]
        assert ("channel_failing", "pagerduty", FIRING, "*") in routed
        assert ("channel_failing", "dashboard", FIRING, "*") in routed
        assert not any(rule == "channel_failing" and channel == "slack" for rule, channel, _, _ in routed)
        assert 'logwarden_alert_channel_failing_seconds{channel="slack"}' in service.metrics_text().decode()

        slack.up()  # Slack is back: the waiting message goes out, the channel no longer fails
        wait_for(lambda: not service.metrics.failing_since(), timeout=15)
        resolved = rules.check(state(since + 400))
        assert events(resolved) == [("channel_failing", "slack", RESOLVED)]
        assert resolved[0].channels == ["pagerduty", "dashboard"]
    finally:
        service.close(timeout=0.5)
        slack.down()
        pagerduty.down()


def test_the_readme_tells_every_self_rule_and_its_defaults():
    from tests.readme import README, fenced_blocks

    section = README.read_text(encoding="utf-8").split("## Operating logwarden", 1)[1].split("\n## ", 1)[0]
    block = next(b for b in fenced_blocks(section, "yaml") if "self_rules" in b)
    assert parse_settings(block, "README.md").monitoring.self_rules == SelfRulesConfig()
    for rule in RULE_NAMES:
        assert f"| `{rule}` (" in section, f"README's Operating logwarden section does not describe {rule}"
