"""A digest waiting at shutdown is sent before the stack stops (real SMTP: aiosmtpd), or, when it cannot
go, said to wait for the next start; the demo's digest interval is short enough for the demo."""
from __future__ import annotations

import time

from logwarden.alerting.config import parse_alerting
from logwarden.alerting.digest import flush_digests, pending_digests
from logwarden.demo import DEMO_DIGEST_EVERY, demo_alerting
from logwarden.testing.receivers import SmtpServer
from tests.alerting.conftest import anomaly


def email_section(smtp_server: SmtpServer, tls_files, every: str = "15m") -> dict:
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port, "username": SmtpServer.USER,
            "password": SmtpServer.PASSWORD, "ca_file": str(tls_files[0]), "from": "a@example.org",
            "to": ["b@example.org"], "digest": {"every": every, "max_alerts": 20}}


def test_a_pending_digest_is_sent_at_shutdown(make_service, smtp_server, tls_files):
    service = make_service({"email": email_section(smtp_server, tls_files)})
    service.dispatch([anomaly("slow_response", key=f"svc{i}", severity="MEDIUM") for i in range(3)])
    [waiting] = pending_digests(service)
    assert waiting.alerts == 3 and waiting.due_at > time.time() + 800 and not smtp_server.messages
    sent, left = flush_digests(service, timeout=10)
    assert (sent, left) == (1, [])
    assert [m["Subject"] for m in smtp_server.messages] == ["[logwarden] digest: 3 alerts (3 MEDIUM)"]


def test_a_digest_that_cannot_go_is_said_to_wait_for_the_next_start(make_service, smtp_server, tls_files):
    service = make_service({"email": email_section(smtp_server, tls_files)})
    service.dispatch([anomaly("slow_response", key="svc", severity="MEDIUM")])
    smtp_server.refuse(True)
    sent, [left] = flush_digests(service, timeout=5)
    assert sent == 0 and left.alerts == 1 and "451" in (left.last_error or "")
    line = left.describe()
    assert "email digest of 1 alert(s) not sent" in line and "after the next start (due " in line


def test_the_demo_sends_its_digest_within_the_demo(make_service, smtp_server, tls_files):
    config = parse_alerting({"email": email_section(smtp_server, tls_files)})
    assert config.receivers["email"].digest.every == 900
    demo = demo_alerting(config)
    assert demo.receivers["email"].digest.every == DEMO_DIGEST_EVERY == 60
    assert demo.receivers["email"].smtp_port == smtp_server.port  # the rest as configured
    fast = demo_alerting(parse_alerting({"email": email_section(smtp_server, tls_files, every="1s")}))
    service = make_service({"email": email_section(smtp_server, tls_files, every="1s")})
    assert fast.receivers["email"].digest.every == 1  # a shorter interval is kept
    service.dispatch([anomaly("slow_response", key="svc", severity="MEDIUM")])
    deadline = time.monotonic() + 10
    while not smtp_server.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["Subject"] for m in smtp_server.messages] == ["[logwarden] digest: 1 alerts (1 MEDIUM)"]
