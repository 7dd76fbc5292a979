"""Configuration parsing (unknown keys refused) and the in-memory budget."""

from __future__ import annotations

import asyncio

import pytest

from logwarden.collector.budget import MemoryBudget
from logwarden.collector.config import CollectorConfig
from logwarden.common.yamlconf import ConfigError
from logwarden.settings import load_settings


def test_config_reads_sizes_durations_and_nested_sections():
    config = CollectorConfig.from_dict(
        {
            "max_body_bytes": "8MiB",
            "memory_budget_bytes": 1_000_000,
            "idle_timeout": "2m",
            "batch": {"max_records": 1000, "max_age": "250ms"},
            "timestamp_skew": {"max_future": "5m"},
            "tokens": {"a-long-enough-token-123": "acme"},
            "stream_networks": ["10.0.0.0/8"],
            "syslog_port": None,
        }
    )
    assert (config.max_body_bytes, config.memory_budget_bytes, config.idle_timeout) == (
        8 << 20,
        1_000_000,
        120,
    )
    assert (config.batch.max_records, config.batch.max_age, config.skew.max_future) == (1000, 0.25, 300)
    assert config.syslog_port is None and config.syslog_port_required


@pytest.mark.parametrize(
    "section, message",
    [
        ({"htpp_port": 1}, "collector.htpp_port: unknown key (known keys: batch, body_timeout, "),
        ({"batch": {"max_rows": 1}}, "collector.batch.max_rows: unknown key (known keys: max_age, max_bytes, "
                                     "max_records)"),
        ({"http_port": 70000}, "collector.http_port: expected a port number from 0 to 65535, got 70000"),
        ({"http_port": "abc"}, "collector.http_port: expected a port number from 0 to 65535, got 'abc'"),
        ({"tcp_port": True}, "collector.tcp_port: expected a port number from 0 to 65535 or null, got true"),
        ({"max_body_bytes": "lots"}, "collector.max_body_bytes: expected a size (e.g. 1048576, 500KB, 64MiB), "
                                     "got 'lots'"),
        ({"max_fields": 0}, "collector.max_fields: expected a positive integer, got 0"),
        ({"udp_syslog": "yes"}, "collector.udp_syslog: expected true or false, got 'yes'"),
        ({"idle_timeout": "soon"}, "collector.idle_timeout: expected a duration (e.g. 500ms, 30s, 5m, 2h, 7d), "
                                   "got 'soon'"),
        ({"body_timeout": 0}, "collector.body_timeout: expected a duration longer than 0s (e.g. 500ms, 30s, 5m, "
                              "2h, 7d), got 0"),
        ({"tokens": {"short": "acme"}}, "collector.tokens: a token must be a string of at least 16 characters"),
        ({"tokens": ["a-long-enough-token-123"]}, "collector.tokens: expected a mapping of bearer token to tenant, "
                                                  "got a list"),
        ({"tls": {"cert_file": "c.pem"}}, "collector.tls.key_file: missing (TLS needs both cert_file and key_file)"),
        ({"stream_networks": ["not-a-network"]}, "collector.stream_networks.0: not a network: "),
        ({"batch": [1]}, "collector.batch: expected a mapping, got a list"),
    ],
)
def test_bad_config_is_refused_with_a_clear_error(section, message):
    with pytest.raises(ConfigError) as caught:
        CollectorConfig.from_dict(section)
    assert str(caught.value).startswith(message)


def test_a_section_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError) as caught:
        CollectorConfig.from_dict(["a"])
    assert str(caught.value) == "collector: expected a mapping, got a list"


def test_a_token_never_shows_in_an_error():
    with pytest.raises(ConfigError) as caught:
        CollectorConfig.from_dict({"tokens": {"a-long-enough-token-123": ""}})
    assert "a-long" not in str(caught.value) and str(caught.value).startswith("collector.tokens: the tenant")


def test_config_file_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "logwarden.yaml"
    path.write_text("collector:\n  http_port: 8080\n  spool_dir: /tmp\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}:3: collector.spool_dir: unknown key (known keys: ")


def test_budget_refuses_or_queues_past_its_limit_and_wakes_waiters_in_order():
    async def scenario():
        budget = MemoryBudget(100)
        assert budget.try_acquire(80) and not budget.try_acquire(30)
        order = []

        async def waiter(name, size):
            await budget.acquire(size)
            order.append(name)

        tasks = [asyncio.create_task(waiter("first", 50)), asyncio.create_task(waiter("second", 10))]
        await asyncio.sleep(0)
        assert order == [] and budget.exhausted
        budget.release(80)
        await asyncio.gather(*tasks)
        assert order == ["first", "second"] and budget.used == 60
        assert budget.try_acquire(1000) is False
        budget.release(60)
        assert budget.try_acquire(1000)  # a request larger than the whole budget fits an empty one

    asyncio.run(scenario())
