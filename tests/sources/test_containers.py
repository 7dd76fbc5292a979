"""Container log lines (CRI, docker json-file) are detected and unwrapped; pod metadata comes from file names."""

from __future__ import annotations

import orjson
import pytest

from logwarden.collector.sources.config import FileSource
from logwarden.collector.sources.kubernetes import pod_metadata
from logwarden.collector.sources.records import RecordMaker, detect_format
from logwarden.formats import detect, parse, read_records

CRI = b"2024-01-01T00:00:00.123456789Z stderr F level=error msg=\"db down\" component=api"
DOCKER = orjson.dumps({"log": "2024-01-01 00:00:01,500 ERROR pool exhausted\n", "stream": "stderr",
                       "time": "2024-01-01T00:00:02.000000001Z"})


def test_a_cri_line_is_cri_not_syslog_with_host_stderr() -> None:
    assert detect(CRI).format == "cri"
    record = parse(CRI)
    assert record.format == "cri" and "hostname" not in record.attributes
    assert (record.level, record.message, record.service, record.attributes["stream"]) == \
        ("ERROR", "db down", "api", "stderr")
    assert record.timestamp.isoformat() == "2024-01-01T00:00:00.123456+00:00"


def test_a_docker_line_is_unwrapped_its_newline_dropped_stream_and_time_kept_level_lifted() -> None:
    assert detect(DOCKER).format == "docker-json"
    record = parse(DOCKER)
    assert record.message == "pool exhausted" and not record.message.endswith("\n")
    assert record.level == "ERROR" and record.timestamp.isoformat() == "2024-01-01T00:00:01.500000+00:00"
    assert record.attributes == {"stream": "stderr", "runtime_time": "2024-01-01T00:00:02.000000001Z"}
    plain = parse(orjson.dumps({"log": "just text\n", "stream": "stdout", "time": "2024-01-01T00:00:02Z"}))
    assert plain.message == "just text" and plain.timestamp.isoformat() == "2024-01-01T00:00:02+00:00"


def test_files_of_container_lines_are_detected_as_such(tmp_path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(CRI + b"\n" + CRI.replace(b"stderr F", b"stdout P") + b"\n")
    assert {detect(record).format for record in read_records(path)} == {"cri"}
    assert detect_format(CRI + b"\n" + CRI + b"\n", "auto") == ("cri", True)
    assert detect_format(DOCKER + b"\n", "auto") == ("docker-json", True)


@pytest.mark.parametrize(("path", "expected"), [
    ("/var/log/pods/shop_cart-7d9f8-xk2p_0e1b2c3d-1111-2222-3333-444455556666/cart/3.log",
     {"namespace": "shop", "pod": "cart-7d9f8-xk2p", "pod_uid": "0e1b2c3d-1111-2222-3333-444455556666",
      "container": "cart", "restart_count": 3}),
    ("/var/log/pods/kube-system_coredns-5d78c9869d-abcde_9f8e/coredns/0.log.20240101-120000.gz",
     {"namespace": "kube-system", "pod": "coredns-5d78c9869d-abcde", "pod_uid": "9f8e", "container": "coredns",
      "restart_count": 0}),
    ("/var/log/containers/cart-7d9f8-xk2p_shop_cart-sidecar-" + "c" * 64 + ".log",
     {"namespace": "shop", "pod": "cart-7d9f8-xk2p", "container": "cart-sidecar", "container_id": "c" * 64}),
    ("/var/log/app/api.log", {}),
])
def test_pod_metadata_from_the_kubelet_file_names(path: str, expected: dict) -> None:
    assert pod_metadata(path) == expected


@pytest.mark.parametrize(("service", "expected"), [
    (None, "cart"),  # the container
    ("{namespace}-{container}", "shop-cart"),
    ("payments", "payments"),
    (r"/pods/(?P<service>[^_]+)_", "shop"),
])
def test_the_service_of_pod_logs(service: str | None, expected: str) -> None:
    path = "/var/log/pods/shop_cart-7d9f8-xk2p_0e1b/cart/0.log"
    maker = RecordMaker(FileSource("pods", ("x",), service=service), path)
    value = maker.value(parse(b"2024-01-01T00:00:00Z stdout F hello"), "2024-01-01T00:00:00+00:00")
    assert value["service"] == expected and value["kubernetes"]["container"] == "cart"


def test_a_service_the_line_names_wins_over_the_container_but_not_over_the_configuration() -> None:
    line = b"2024-01-01T00:00:00Z stdout F " + orjson.dumps({"service": "checkout", "msg": "hi"})
    path = "/var/log/pods/shop_cart-7d9f8-xk2p_0e1b/cart/0.log"
    default = RecordMaker(FileSource("pods", ("x",)), path).value(parse(line), "")
    configured = RecordMaker(FileSource("pods", ("x",), service="{container}"), path).value(parse(line), "")
    assert (default["service"], configured["service"]) == ("checkout", "cart")
