"""The ML rules' minute buffer: rows come back once their minute closes, in full, and a batch that closes
no minute costs no pass over the buffered rows."""
from __future__ import annotations

import pickle

import pyarrow as pa

from logwarden.monitoring.ml.finding import MINUTE_US, MinuteBuffer

T0 = 1_795_000_000 * 1_000_000 // MINUTE_US * MINUTE_US  # a minute boundary, µs


def rows(*micros: int) -> pa.Table:
    return pa.table({"timestamp": pa.array(micros, pa.timestamp("us", tz="UTC")),
                     "service": pa.array(["api"] * len(micros))})


def test_rows_come_back_when_their_minute_closes_and_not_before():
    buffer = MinuteBuffer(("timestamp", "service"))
    for second in range(0, 60, 10):
        buffer.add(rows(T0 + second * 1_000_000))
        assert buffer.pop_closed(T0 + second * 1_000_000) is None
    assert len(buffer.parts) == 6  # no minute closed: the buffered rows were not gone through (nor merged)
    buffer = MinuteBuffer(("timestamp", "service"))
    for second in range(0, 70, 10):
        buffer.add(rows(T0 + second * 1_000_000))
    done = buffer.pop_closed(T0 + 65 * 1_000_000)
    assert done.num_rows == 6 and buffer.pop_closed(T0 + 66 * 1_000_000) is None
    assert buffer.pop_closed(T0 + 2 * MINUTE_US).num_rows == 1 and buffer.oldest_us is None


def test_a_buffer_pickled_before_it_knew_its_oldest_row_still_closes_minutes():
    buffer = MinuteBuffer(("timestamp", "service"))
    buffer.add(rows(T0 + 5_000_000, T0 + 70_000_000))
    state = buffer.__getstate__()
    del state["oldest_us"]
    old = MinuteBuffer.__new__(MinuteBuffer)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old.oldest_us == T0 + 5_000_000 and old.pop_closed(T0 + MINUTE_US).num_rows == 1
