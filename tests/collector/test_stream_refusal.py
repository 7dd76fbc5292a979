"""A stream connection (TCP NDJSON, syslog over TCP) whose records the collector cannot keep (the data
disk under ``min_free_disk_bytes``, or a failed write-ahead-log write) is reset, never closed cleanly:
to a stream client a clean close means "all you sent is durable" (the soak's disk-full fault counted
12,900 refused records as acknowledged before this)."""
from __future__ import annotations

import socket

import pytest

from tests.collector.helpers import RunningCollector, collector_config, ndjson, record, spooled_rows


def _send_and_half_close(port: int, data: bytes) -> str:
    """Send, half-close, read until the collector closes: 'clean close' or the error's name."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        try:
            while sock.recv(65536):
                pass
        except OSError as exc:
            return type(exc).__name__
    return "clean close"


@pytest.mark.parametrize("low_water", [0, 1 << 62])
def test_refused_stream_records_reset_the_connection(tmp_path, low_water):
    data = tmp_path / "data"
    with RunningCollector(data, collector_config(min_free_disk_bytes=low_water)) as collector:
        outcome = _send_and_half_close(collector.server.tcp_port, ndjson([record(n) for n in range(20)]))
    if low_water:  # more free space asked for than any disk has: every record is refused
        assert outcome == "ConnectionResetError"
        assert spooled_rows(data) == []
    else:
        assert outcome == "clean close"
        assert len(spooled_rows(data)) == 20
