"""The stack's HTTP API as the dashboard's pages use it: always with the token of the person at the page.

The pages never query the lake or the alert store for a person: they ask the API with that person's
token, so the API's role checks and tenant confinement (``logwarden.storage.api``,
``logwarden.alerting.http``) are the only rules, and a page shows exactly what the token may see.
"""
from __future__ import annotations

import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterable

import orjson

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than 2xx (``status`` 0: the API could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ApiClient:
    """Calls ``base_url`` (``http(s)://host:port`` of ``logwarden up``'s API) with a caller's credentials
    (the ``Authorization`` header value; None without tokens configured: loopback rules)."""

    base_url: str
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 30.0

    def _request(self, method: str, path: str, authorization: str | None, params: Iterable[tuple[str, str]] = (),
                 body: dict[str, Any] | None = None) -> tuple[bytes, str]:
        query = urllib.parse.urlencode(list(params))
        url = f"{self.base_url.rstrip('/')}{path}{'?' + query if query else ''}"
        headers = {"Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.ssl_context) as answer:
                return answer.read(), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _error_text(exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(0, f"the API at {self.base_url} cannot be reached: {exc}") from None

    def get_json(self, path: str, authorization: str | None, params: Iterable[tuple[str, str]] = ()) -> Any:
        """``GET path`` as JSON."""
        return orjson.loads(self._request("GET", path, authorization, params)[0])

    def post_json(self, path: str, authorization: str | None, body: dict[str, Any]) -> Any:
        """``POST path`` with a JSON body; the JSON answer."""
        return orjson.loads(self._request("POST", path, authorization, body=body)[0])

    def get_bytes(self, path: str, authorization: str | None, params: Iterable[tuple[str, str]] = ()) -> tuple[bytes, str]:
        """``GET path``: the body and its content type (exports)."""
        return self._request("GET", path, authorization, params)

    def get_text(self, path: str, authorization: str | None) -> str:
        """``GET path`` as text (Prometheus metrics)."""
        return self._request("GET", path, authorization)[0].decode("utf-8", "replace")


def _error_text(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")[:300]
    return str(data.get("error") or data) if isinstance(data, dict) else str(data)
