"""Real local servers speaking the protocols alerting talks: Slack (incoming webhook and Web API
chat.postMessage), PagerDuty Events API v2, a generic webhook, and SMTP (aiosmtpd) with STARTTLS,
implicit TLS and authentication.

Used by the alerting tests and by the soak benchmark (``bench/soak.py``): the HTTP server can go
down and come back on its port, and the SMTP server can refuse messages for a while (``451``).
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import time
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from logwarden.testing.cluster import free_port


class ProtocolServer:
    """An HTTP server on 127.0.0.1 recording every request; it can go down and come back on its port."""

    SLACK_TOKEN = "xoxb-test-token"
    PD_ROUTING_KEY = "R0UT1NGKEY0123456789012345678901"

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.status_override: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Start serving (again) on the same port."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                status, body = owner.handle(self.path, dict(self.headers), raw)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type", "application/json" if not isinstance(body, bytes) else "text/plain"
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        for _ in range(50):
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"port {self.port} stays busy")
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop serving: connections are refused until ``up``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    # protocols ------------------------------------------------------------------------------
    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        """Answer one POST as the real service would; the request is kept with the status answered."""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        entry = {"path": path, "headers": headers, "body": body, "at": time.time()}
        with self.lock:
            self.requests.append(entry)
        status, answer = self._answer(path, headers, body)
        entry["status"] = status
        return status, answer

    def _answer(self, path: str, headers: dict[str, str], body: dict) -> tuple[int, Any]:
        if self.status_override is not None:
            return self.status_override, {"error": "overridden"}
        if path.startswith("/services/"):  # Slack incoming webhook
            if not body.get("text") and not body.get("blocks") and not body.get("attachments"):
                return 400, b"no_text"
            return 200, b"ok"
        if path == "/api/chat.postMessage":  # Slack Web API
            if headers.get("Authorization") != f"Bearer {self.SLACK_TOKEN}":
                return 200, {"ok": False, "error": "invalid_auth"}
            if not body.get("channel"):
                return 200, {"ok": False, "error": "channel_not_found"}
            return 200, {
                "ok": True,
                "channel": body["channel"],
                "ts": f"{time.time():.6f}",
                "message": {"text": body.get("text", "")},
            }
        if path == "/v2/enqueue":  # PagerDuty Events API v2
            errors = []
            if body.get("routing_key") != self.PD_ROUTING_KEY:
                errors.append("routing_key is invalid")
            action = body.get("event_action")
            if action not in ("trigger", "acknowledge", "resolve"):
                errors.append("event_action is invalid")
            if action == "trigger":
                payload = body.get("payload") or {}
                for name in ("summary", "source", "severity"):
                    if not payload.get(name):
                        errors.append(f"'payload.{name}' is missing or blank")
                if payload.get("severity") not in ("critical", "error", "warning", "info"):
                    errors.append("'payload.severity' is invalid")
            elif not body.get("dedup_key"):
                errors.append("'dedup_key' is missing")
            if errors:
                return 400, {
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": errors,
                }
            return 202, {
                "status": "success",
                "message": "Event processed",
                "dedup_key": body.get("dedup_key"),
            }
        if path.startswith("/hook"):  # a generic webhook
            return 200, {"ok": True}
        return 404, {"error": "not found"}

    def posts(self, prefix: str) -> list[dict]:
        """The request bodies received on paths starting with ``prefix``."""
        with self.lock:
            return [r["body"] for r in self.requests if r["path"].startswith(prefix)]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key (the certificate is also the CA file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class _Collect:
    """Keeps every accepted message (with the time it was accepted); refuses while ``refusing``."""

    REFUSAL = "451 4.3.0 Temporary failure: try again later"

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.accepted_at: list[float] = []
        self.refused = 0
        self.refusing = False

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refusing:
            self.refused += 1
            return self.REFUSAL
        self.messages.append(
            message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        )
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.accepted_at.append(time.time())
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on 127.0.0.1: ``starttls`` (required, with AUTH after TLS) or ``ssl`` (implicit TLS)."""

    USER, PASSWORD = "alerts", "s3cret"

    def __init__(self, cert: Path, key: Path, mode: str = "starttls") -> None:
        self.handler = _Collect()
        self.port = free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == self.USER
                and auth_data.password.decode() == self.PASSWORD
            )
            return AuthResult(success=ok, handled=False)

        kwargs: dict[str, Any] = dict(
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate,
            auth_required=True,
            auth_require_tls=True,
        )
        if mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            # implicit TLS: the whole session is encrypted
            # (aiosmtpd only tracks STARTTLS for auth_require_tls)
            kwargs.update(ssl_context=context, server_hostname="localhost", auth_require_tls=False)
        self.controller = Controller(self.handler, **kwargs)

    def start(self) -> "SmtpServer":
        """Start the server thread."""
        self.controller.start()
        return self

    def stop(self) -> None:
        """Stop the server thread."""
        self.controller.stop()

    @property
    def messages(self) -> list[Message]:
        """The e-mails received."""
        return self.handler.messages

    @property
    def accepted_at(self) -> list[float]:
        """When each of ``messages`` was accepted (epoch seconds)."""
        return self.handler.accepted_at

    def refuse(self, refusing: bool) -> None:
        """Answer every message with a temporary failure (``451``) while ``refusing`` is True."""
        self.handler.refusing = refusing
