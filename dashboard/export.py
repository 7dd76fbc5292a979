"""``GET /export?format=csv|parquet|json&…``: the log search's download, the search API's export asked
with the visitor's credentials (so the same tenant rules apply) and handed back as a file."""
from __future__ import annotations

import asyncio
import json

from tornado.web import RequestHandler

from logwarden.common.auth import AuthError
from logwarden.dashboard.apiclient import ApiClient, ApiError
from logwarden.dashboard.auth import DashboardAuth
from logwarden.dashboard.logquery import EXPORT_LIMIT

FORMATS = {"csv": "csv", "parquet": "parquet", "json": "ndjson"}  # format -> file extension
PASSED = ("service", "level", "user_id", "request_id", "error_code", "template_id", "q", "since", "until", "where",
          "sort", "order", "limit")


class ExportHandler(RequestHandler):
    """Streams nothing itself: one API call, its body as an attachment."""

    def initialize(self, provider: DashboardAuth, api: ApiClient) -> None:
        self.provider = provider
        self.api = api

    async def get(self) -> None:
        try:
            grant = self.provider.grant_for(self)
        except AuthError as exc:
            self._fail(exc.status, exc.message)
            return
        fmt = self.get_query_argument("format", "csv")
        if fmt not in FORMATS:
            self._fail(400, f"format must be one of {', '.join(FORMATS)}")
            return
        params = [(name, value) for name in PASSED for value in self.get_query_arguments(name)]
        if not self.get_query_arguments("limit"):
            params.append(("limit", str(EXPORT_LIMIT)))  # a download holds every match, up to the API's page
        params.append(("format", fmt))
        try:
            body, content_type = await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.api.get_bytes("/v1/search", grant.authorization, params))
        except ApiError as exc:
            self._fail(exc.status or 502, exc.message)
            return
        self.set_header("Content-Type", content_type or "application/octet-stream")
        self.set_header("Content-Disposition", f'attachment; filename="logwarden-logs.{FORMATS[fmt]}"')
        self.set_header("Cache-Control", "no-store")
        self.finish(body)

    def _fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message, "status": status}))
