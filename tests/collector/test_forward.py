"""Fluent forward: ``fluent-logger`` (its sender and its logging handler) ships to the listener; the
PackedForward, compressed and Forward modes with the ``chunk`` option are acknowledged only once the
records are durable; the handshake with a shared key names the tenant; hostile peers are cut off
without stalling the others."""

from __future__ import annotations

import gzip
import hashlib
import logging
import socket
import struct
import time
from pathlib import Path

import msgpack
import orjson
import pytest
from fluent import handler as fluent_handler
from fluent import sender as fluent_sender

from logwarden.collector.forward import ForwardListener, ForwardOptions
from logwarden.common.auth import Authenticator
from tests.collector.protocol_server import ProtocolServer, attributes

NOW = int(time.time())
CEF = (
    "CEF:0|Trend Micro|Deep Security Manager|10.0|600|User Signed In|10|"
    "src=10.52.116.160 suser=admin target=admin msg=User signed in from 10.52.116.160"
)


class ForwardServer:
    """A ForwardListener on the loop of a ProtocolServer (its ingestor and executor)."""

    def __init__(self, root: Path, options: ForwardOptions | None = None) -> None:
        self.base = ProtocolServer(root)
        self.options = options or ForwardOptions()
        self.stopped = False

    def __enter__(self) -> "ForwardServer":
        self.base.__enter__()
        auth = Authenticator(stream_tenant="streams", stream_networks=("127.0.0.0/8",))
        self.listener = ForwardListener(self.base.ingestor, auth, self.base.executor, 30.0, self.options)
        self.server = self.base.call(self.listener.start("127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def accepted(self) -> float:
        return self.base.ingestor.metrics.accepted.labels("forward")._value.get()

    def wait_accepted(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.accepted() < count:
            assert time.monotonic() < deadline, f"only {self.accepted()} of {count} records accepted"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True

        async def close() -> None:
            self.server.close()
            await self.listener.close_connections()

        self.base.call(close())
        self.base.__exit__(None, None, None)

    def rows(self) -> list[dict]:
        self.stop()
        return self.base.rows()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def forward(tmp_path):
    server = ForwardServer(tmp_path).__enter__()
    yield server
    server.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_one(sock: socket.socket) -> object:
    reader = msgpack.Unpacker(raw=False)
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the collector")
        reader.feed(data)
        for item in reader:
            return item


def closed_by_peer(sock: socket.socket, timeout: float = 10.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def event_time(seconds: float) -> msgpack.ExtType:
    whole = int(seconds)
    return msgpack.ExtType(0, struct.pack(">II", whole, int(round((seconds - whole) * 1e9))))


def entries(n: int, start: int = 0) -> list:
    return [[event_time(NOW + i + 0.5), {"level": "info", "message": f"packed {start + i}", "user_id": f"u{i}"}]
            for i in range(n)]


def packed(items: list) -> bytes:
    return b"".join(msgpack.packb(item) for item in items)


def test_fluent_logger_sender_message_mode_with_event_time(forward):
    with fluent_sender.FluentSender("billing", port=forward.port, nanosecond_precision=True) as logger:
        assert logger.emit("payment", {"level": "error", "message": "Payment declined", "order": 17})
        assert logger.emit_with_time("payment", NOW, {"msg": "Refund issued", "severity": "warn",
                                                      "user_id": "u-9", "duration_ms": 12.5})
    forward.wait_accepted(2)
    rows = {row["message"]: row for row in forward.rows()}
    declined = rows["Payment declined"]
    assert (declined["service"], declined["level"], declined["tenant"]) == ("billing", "ERROR", "streams")
    assert attributes(declined) == {"order": 17, "tag": "billing.payment", "level_original": "error"}
    assert abs(declined["timestamp"].timestamp() - time.time()) < 60
    refund = rows["Refund issued"]
    assert (refund["level"], refund["user_id"], refund["duration_ms"]) == ("WARNING", "u-9", 12.5)
    assert refund["timestamp"].timestamp() == NOW
    assert refund["source"].startswith("forward:")


def test_fluent_logger_logging_handler(forward):
    handler = fluent_handler.FluentHandler("api.requests", port=forward.port)
    handler.setFormatter(fluent_handler.FluentRecordFormatter(
        {"level": "%(levelname)s", "logger": "%(name)s", "service": "gateway"}
    ))
    logger = logging.getLogger("test.fluent")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("Upstream slow: %d ms", 5400)
        logger.error('{"message": "Upstream down", "error_code": "UPSTREAM_DOWN"}')  # JSON text: merged
    finally:
        logger.removeHandler(handler)
        handler.close()
    forward.wait_accepted(2)
    rows = {row["message"]: row for row in forward.rows()}
    assert (rows["Upstream slow: 5400 ms"]["level"], rows["Upstream slow: 5400 ms"]["service"]) == (
        "WARNING", "gateway"
    )
    down = rows["Upstream down"]
    assert (down["level"], down["error_code"]) == ("ERROR", "UPSTREAM_DOWN")
    assert attributes(down)["logger"] == "test.fluent"


def test_packed_forward_with_chunk_is_acknowledged_once_durable(forward, tmp_path):
    with connect(forward.port) as sock:
        sock.sendall(msgpack.packb(["app.web", packed(entries(500)), {"chunk": "c-1", "size": 500}]))
        assert read_one(sock) == {"ack": "c-1"}
        # the ack came after the fsync: the write-ahead log on disk holds every record of the chunk
        wal = b"".join(path.read_bytes() for path in (tmp_path / "wal").iterdir() if path.is_file())
        assert all(f'"packed {n}"'.encode() in wal for n in range(500))
        members = gzip.compress(packed(entries(100, 500))) + gzip.compress(packed(entries(100, 600)))
        sock.sendall(msgpack.packb(["app.web", members, {"chunk": "c-2", "compressed": "gzip"}]))
        assert read_one(sock) == {"ack": "c-2"}
        sock.sendall(msgpack.packb(["app.web", entries(10, 700), {"chunk": b"c-3"}]))  # Forward mode
        assert read_one(sock) == {"ack": b"c-3"}
        sock.sendall(msgpack.packb(["app.web", NOW, {"log": "single"}, {"chunk": "c-4"}]))  # Message mode
        assert read_one(sock) == {"ack": "c-4"}
    rows = forward.rows()
    assert sorted(int(row["message"].split()[1]) for row in rows if row["message"].startswith("packed")) == list(
        range(710)
    )
    first = next(row for row in rows if row["message"] == "packed 0")
    assert first["timestamp"].timestamp() == NOW + 0.5 and first["service"] == "app" and first["user_id"] == "u0"
    assert any(row["message"] == "single" for row in rows)


def test_refused_entries_are_dead_lettered_and_the_chunk_still_acknowledged(forward):
    bad = [[NOW, "not a map"], ["yesterday", {"message": "bad time"}], [NOW, {"message": "m", "level": "LOUD"}]]
    with connect(forward.port) as sock:
        sock.sendall(msgpack.packb(["app", [*entries(3), *bad], {"chunk": "x"}]))
        assert read_one(sock) == {"ack": "x"}
    assert len(forward.rows()) == 3
    letters = forward.base.letters()
    assert len(letters) == 3 and {letter.protocol for letter in letters} == {"forward"}
    assert all(letter.tenant == "streams" for letter in letters)
    loud = next(letter for letter in letters if letter.field == "level")
    tag, stamp, record = msgpack.unpackb(loud.raw, raw=False)
    assert (tag, stamp, record) == ("app", NOW, {"message": "m", "level": "LOUD"})  # the entry as sent


def test_structured_lines_are_parsed_and_the_tag_names_the_service(tmp_path):
    with ForwardServer(tmp_path, ForwardOptions(tag_service="last")) as forward:
        records = [
            {"log": CEF, "stream": "stdout"},
            {"log": 'level=error msg="Cache miss storm" user_id=u-3', "stream": "stderr"},
            {"log": '{"level":"warn","msg":"JSON inside","service":"inner"}'},
            {"log": "2026-11-22 10:00:00 ERROR plain text with a level"},
            {"log": "nothing structured here"},
        ]
        with connect(forward.port) as sock:
            sock.sendall(msgpack.packb(["kube.var.log.containers.web", [[NOW, r] for r in records], {"chunk": "k"}]))
            assert read_one(sock) == {"ack": "k"}
        rows = {row["message"]: row for row in forward.rows()}
    cef = rows["User Signed In"]
    assert (cef["level"], cef["user_id"], cef["service"]) == ("CRITICAL", "admin", "Deep Security Manager")
    assert attributes(cef)["src"] == "10.52.116.160" and attributes(cef)["format"] == "cef"
    storm = rows["Cache miss storm"]
    assert (storm["level"], storm["user_id"], storm["service"]) == ("ERROR", "u-3", "web")
    assert (rows["JSON inside"]["level"], rows["JSON inside"]["service"]) == ("WARNING", "inner")
    assert rows["plain text with a level"]["level"] == "ERROR"
    plain = rows["nothing structured here"]
    assert (plain["level"], plain["service"]) == ("INFO", "web")
    assert attributes(plain) == {"tag": "kube.var.log.containers.web"}


def test_garbage_closes_its_connection_only(forward):
    with connect(forward.port) as good, connect(forward.port) as bad:
        bad.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # an int, then bytes that are no msgpack
        assert closed_by_peer(bad)
        good.sendall(msgpack.packb(["app", entries(2), {"chunk": "still"}]))
        assert read_one(good) == {"ack": "still"}
    with connect(forward.port) as other:
        other.sendall(msgpack.packb({"not": "an array"}))
        assert closed_by_peer(other)
    assert len(forward.rows()) == 2


def hostile_messages() -> list[tuple[str, bytes]]:
    bomb = gzip.compress(b"\x00" * (8 << 20))  # 8 MiB of zeros: over the 1 MiB limit once inflated
    cut = gzip.compress(packed(entries(200)))
    return [
        ("oversized", msgpack.packb(["app", NOW, {"message": "x" * (2 << 20)}])),
        ("bomb", msgpack.packb(["app", bomb, {"compressed": "gzip", "chunk": "b"}])),
        ("truncated gzip", msgpack.packb(["app", cut[: len(cut) // 2], {"compressed": "gzip", "chunk": "t"}])),
        ("truncated entries", msgpack.packb(["app", packed(entries(20))[:-3], {"chunk": "e"}])),
        ("deep nesting", b"\x93\xa3app" + b"\x91" * 5000 + b"\x01"),
        ("invalid UTF-8 tag", b"\x93\xa3\xff\xfe\xfd\x01\x80"),
    ]


@pytest.mark.parametrize("name, message", hostile_messages(), ids=[name for name, _ in hostile_messages()])
def test_hostile_messages_close_the_connection_without_an_ack_or_records(tmp_path, name, message):
    with ForwardServer(tmp_path, ForwardOptions(max_message_bytes=1 << 20)) as forward:
        with connect(forward.port) as sock:
            sock.sendall(message)
            if name == "invalid UTF-8 tag":  # a valid message after all: the tag is kept, with replacements
                sock.sendall(msgpack.packb(["after", NOW, {"message": "next"}, {"chunk": "n"}]))
                assert read_one(sock) == {"ack": "n"}
                return
            assert closed_by_peer(sock)
        assert forward.rows() == []


def ping(sock: socket.socket, key: str, hostname: str = "client-1") -> list:
    helo = read_one(sock)
    assert helo[0] == "HELO" and helo[1]["auth"] == b""
    nonce = helo[1]["nonce"]
    salt = b"0123456789abcdef"
    digest = hashlib.sha512(salt + hostname.encode() + nonce + key.encode()).hexdigest()
    sock.sendall(msgpack.packb(["PING", hostname, salt, digest, "", ""]))
    pong = read_one(sock)
    if pong[1]:
        assert pong[4] == hashlib.sha512(salt + pong[3].encode() + nonce + key.encode()).hexdigest()
    return pong


def test_the_handshake_proves_a_shared_key_which_names_the_tenant(tmp_path):
    keys = {"shared-key-of-acme-0123": "acme", "shared-key-of-bravo-456": "bravo"}
    with ForwardServer(tmp_path, ForwardOptions(shared_keys=keys, hostname="collector")) as forward:
        with connect(forward.port) as sock:
            assert ping(sock, "shared-key-of-bravo-456")[:3] == ["PONG", True, ""]
            sock.sendall(msgpack.packb(["app", entries(3), {"chunk": "h"}]))
            assert read_one(sock) == {"ack": "h"}
        with connect(forward.port) as sock:
            assert ping(sock, "a-wrong-key")[:2] == ["PONG", False]
            assert closed_by_peer(sock)
        with connect(forward.port) as sock:
            read_one(sock)  # HELO
            sock.sendall(msgpack.packb(["app", entries(3), {"chunk": "sneaky"}]))  # no PING
            assert closed_by_peer(sock)
        rows = forward.rows()
    assert len(rows) == 3 and {row["tenant"] for row in rows} == {"bravo"}


def test_records_without_text_fields_and_with_bytes_are_kept(forward):
    record = {b"raw-key": b"\xffbytes", "status": 200, "path": "/x", "nested": {"n": [1, 2]}, 3: "int key"}
    with connect(forward.port) as sock:
        sock.sendall(msgpack.packb(["web.access", NOW, record, {"chunk": "b"}], use_bin_type=True))
        assert read_one(sock) == {"ack": "b"}
    (row,) = forward.rows()
    assert row["service"] == "web" and orjson.loads(row["message"])["path"] == "/x"
    assert attributes(row)["raw-key"] == "\ufffdbytes" and attributes(row)["3"] == "int key"


# --- the fast path (BatchDecoder.mapped with the attributes the decoder serialized) agrees with
# --- validation record by record, on generated Fluent records ------------------------------------------
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from logwarden.collector.batch import BatchDecoder  # noqa: E402
from logwarden.collector.forward import ForwardSession  # noqa: E402
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits  # noqa: E402
from tests.collector.strategies import JSON_VALUES  # noqa: E402
from tests.collector.test_mapped_batch import outcome  # noqa: E402

ANY_TIME = BatchDecoder(RecordValidator(skew=SkewLimits.unlimited(), limits=RecordLimits(max_fields=20, max_depth=5)),
                        1 << 20, 1 << 26)
KNOWN_KEYS = ["message", "msg", "log", "MESSAGE", "level", "severity", "lvl", "service", "app", "user_id", "userId",
              "request_id", "trace_id", "error_code", "duration_ms", "timestamp", "tag", "level_original",
              "message_truncated_from"]
FLUENT_RECORDS = st.dictionaries(
    st.sampled_from(KNOWN_KEYS) | st.text(max_size=5),
    JSON_VALUES | st.sampled_from(["warn", "ERROR", "level=error msg=x", '{"level":"warn","msg":"j"}', "LOUD"])
    | st.binary(max_size=4) | st.floats(allow_nan=True),
    max_size=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FLUENT_RECORDS, min_size=1, max_size=8), st.sampled_from(["first", "last", "full"]))
@example(records=[{"message": "warn", "duration_ms": 2**53 + 1}], mode="first")  # no double holds it exactly
def test_forward_fast_path_equals_validation_record_by_record(records, mode):
    session = ForwardSession(ANY_TIME, ForwardOptions(tag_service=mode))
    entries = [[1795334400 + n, record] for n, record in enumerate(records)]
    session.feed(msgpack.packb(["app.web.x", entries], use_bin_type=True))  # warm: the same "now" below
    fast_records: list = []
    session._message(["app.web.x", entries], fast_records)
    fast = ANY_TIME.mapped(fast_records)
    slow = ANY_TIME.records(fast_records)
    assert outcome(fast) == outcome(slow)
