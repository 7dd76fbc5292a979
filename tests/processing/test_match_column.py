"""Matching a column by digit shape gives exactly the per-message matches."""
from __future__ import annotations

import csv

import pyarrow as pa

from logwarden.processing.templates import MinerConfig, TemplateMiner
from logwarden.processing.templates.distributed import match_column, match_partition


def loghub_messages(shared_data) -> list[str]:
    lines = []
    for path in sorted((shared_data / "loghub").glob("*/*_structured.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            lines += [row["Content"] for row in csv.DictReader(handle)]
    return lines


def ids(matches):
    return [None if m is None else (m.template_id, m.template) for m in matches]


def test_match_column_equals_match_partition_on_loghub(shared_data):
    messages = loghub_messages(shared_data)
    miner = TemplateMiner()
    for message in messages[::2]:  # learn half, so that some messages match nothing
        miner.add(message)
    snapshot = miner.snapshot()
    column = match_column(snapshot, pa.chunked_array([pa.array(messages[:9000]), pa.array(messages[9000:])]))
    assert ids(column) == ids(match_partition(snapshot, messages, with_params=False))
    assert any(m is None for m in column) and any(m is not None for m in column)


def test_without_the_shape_cache_every_message_is_matched_alone(shared_data):
    messages = loghub_messages(shared_data)[:3000]
    miner = TemplateMiner(MinerConfig(mask_cache_size=0))
    for message in messages:
        miner.add(message)
    snapshot = miner.snapshot()
    assert ids(match_column(snapshot, pa.array(messages))) == ids(match_partition(snapshot, messages, False))
