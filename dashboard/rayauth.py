"""Where the Ray dashboard's token is: Ray (2.5x and later) asks for one when token authentication is on,
which it is by default for a local cluster started by ``ray.init()``."""
from __future__ import annotations

import os
from pathlib import Path


def _token_auth_enabled() -> bool:
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
    except ImportError:  # a Ray without token authentication
        return False
    try:
        return bool(is_token_auth_enabled())
    except Exception:  # noqa: BLE001 - Ray's private API changed: no hint rather than no stack
        return False


def ray_dashboard_hint() -> str | None:
    """How to sign in to the Ray dashboard (None when it asks for no token)."""
    if not _token_auth_enabled():
        return None
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "asks for a token: the RAY_AUTH_TOKEN environment variable (`ray get-auth-token` prints it)"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return f"asks for a token: run `ray get-auth-token` (it prints the token kept in {path})"
