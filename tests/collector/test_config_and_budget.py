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
        ({"htpp_port": 1}, "unknown key 'htpp_port'"),
        ({"batch": {"max_rows": 1}}, "batch: unknown key(s) 'max_rows'"),
        ({"http_port": 70000}, "http_port: must be a port number"),
        ({"max_body_bytes": "lots"}, "max_body_bytes: not a size"),
        ({"tokens": {"short": "acme"}}, "at least 16 characters"),
        ({"tls": {"cert_file": "c.pem"}}, "tls: needs both cert_file and key_file"),
        ({"stream_networks": ["not-a-network"]}, "stream_networks"),
    ],
)
def test_bad_config_is_refused_with_a_clear_error(section, message):
    with pytest.raises(ValueError, match=None) as caught:
        CollectorConfig.from_dict(section)
    assert message in str(caught.value)


def test_config_file_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "logwarden.yaml"
    path.write_text("collector:\n  http_port: 8080\n  spool_dir: /tmp\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "logwarden.yaml:" in str(caught.value) and "spool_dir" in str(caught.value)


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
