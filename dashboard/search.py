"""The log search page (``/search``): service, level, time range, text and ``field=value`` on any field,
newest first, page by page, with CSV and Parquet downloads; every query is the search API's, asked with
the visitor's credentials (so the API's tenant rules apply).

URL parameters prefill it (``service``, ``level``, ``since``, ``until``, ``q``, ``key``, ``tenant``,
``fields``): an alert's "logs" link opens the records of its window and key.
"""
from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from bokeh.document import Document
from bokeh.layouts import column, row
from bokeh.models import (Button, ColumnDataSource, DataTable, Div, MultiChoice, Select, TableColumn, TextAreaInput,
                          TextInput)

from logwarden.dashboard.apiclient import ApiError
from logwarden.dashboard.auth import Grant
from logwarden.dashboard.links import EXPORT_PATH, NAV
from logwarden.dashboard.logquery import EXPORT_LIMIT, Cursor, LogQuery, QueryError, parse_conditions, split_list
from logwarden.dashboard.pages import PageContext, arguments, grant_of, in_background

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
COLUMNS = ("timestamp", "level", "service", "message", "user_id", "request_id", "error_code", "duration_ms",
           "tenant", "record_id", "attributes")
PAGE_SIZES = ["20", "50", "100", "500"]


def export_link(query: LogQuery, fmt: str) -> str:
    """The dashboard's download of every record of ``query`` (up to the API's largest page)."""
    params = [p for p in query.params(with_cursor=False, limit=EXPORT_LIMIT)] + [("format", fmt)]
    return f"{EXPORT_PATH}?{urlencode(params)}"


def _rows(records: list[dict[str, Any]]) -> dict[str, list]:
    return {c: ["" if r.get(c) is None else str(r.get(c)) for r in records] for c in COLUMNS}


class SearchPage:
    """The widgets and what they do; one per browser session."""

    def __init__(self, doc: Document, context: PageContext, grant: Grant) -> None:
        self.doc, self.context, self.grant = doc, context, grant
        self.query = LogQuery()
        self.page_records: list[dict[str, Any]] = []
        self.total: int | None = None  # records matching, counted on the first page
        self.service = TextInput(title="service(s)", name="search_service", placeholder="payment-service, api")
        self.levels = MultiChoice(title="level", options=LEVELS, name="search_level")
        self.since = TextInput(title="since (15m, 2h, ISO time)", value="1h", name="search_since")
        self.until = TextInput(title="until (exclusive)", name="search_until")
        self.text = TextInput(title="message contains", name="search_text")
        self.key = TextInput(title="key (any key field)", name="search_key")
        self.tenant = TextInput(title="tenant", name="search_tenant", visible=grant.principal.all_tenants)
        self.fields = TextAreaInput(title="field=value, one per line (any field)", name="search_fields", rows=3)
        self.page_size = Select(title="per page", value="50", options=PAGE_SIZES, name="search_page_size")
        self.button = Button(label="Search", button_type="primary", name="search_button")
        self.prev = Button(label="◀ Previous", name="search_prev", disabled=True)
        self.next = Button(label="Next ▶", name="search_next", disabled=True)
        self.status = Div(text="", name="search_status", sizing_mode="stretch_width")
        self.downloads = Div(text="", name="search_downloads")
        self.source = ColumnDataSource(_rows([]), name="search_results")
        widths = {"timestamp": 200, "level": 70, "service": 130, "message": 420, "record_id": 120}
        self.table = DataTable(source=self.source, index_position=None, height=560, sizing_mode="stretch_width",
                               name="search_table",
                               columns=[TableColumn(field=c, title=c, width=widths.get(c, 100)) for c in COLUMNS])
        self.button.on_click(lambda: self.run(self.query_from_widgets()))
        self.prev.on_click(lambda: self.run(self.query.previous_page()))
        self.next.on_click(self._next_page)

    def layout(self):
        """The page's root."""
        who = html.escape(f"{self.grant.principal.name or 'local'} (tenant {self.grant.principal.tenant}, "
                          f"role {self.grant.principal.role})")
        header = Div(text=f"<h2>logwarden · log search</h2>{NAV}<p>as {who}</p>", sizing_mode="stretch_width")
        filters = row(self.service, self.levels, self.since, self.until, self.text, self.key, self.tenant,
                      sizing_mode="stretch_width")
        controls = row(self.fields, self.page_size, column(self.button, self.downloads),
                       column(row(self.prev, self.next), self.status), sizing_mode="stretch_width")
        return column(header, filters, controls, self.table, sizing_mode="stretch_width", name="search_page")

    def prefill(self, args: dict[str, str]) -> bool:
        """Fill the filters from URL parameters; whether any was given."""
        widgets = {"service": self.service, "since": self.since, "until": self.until, "q": self.text,
                   "key": self.key, "tenant": self.tenant, "fields": self.fields}
        for name, widget in widgets.items():
            if name in args:
                widget.value = args[name]
        if "level" in args:
            self.levels.value = [lv for lv in split_list(args["level"].upper()) if lv in LEVELS]
        return any(name in args for name in (*widgets, "level"))

    def query_from_widgets(self) -> LogQuery | None:
        """The query the filters say (None, with a message shown, when a condition cannot be read)."""
        try:
            return LogQuery(services=split_list(self.service.value), levels=tuple(self.levels.value),
                            since=self.since.value.strip(), until=self.until.value.strip(),
                            text=self.text.value.strip(), conditions=parse_conditions(self.fields.value),
                            key=self.key.value.strip(), tenant=self.tenant.value.strip(),
                            page_size=int(self.page_size.value))
        except QueryError as exc:
            self.status.text = f"<span class='error'>{html.escape(str(exc))}</span>"
            return None

    def _next_page(self) -> None:
        if self.page_records:
            last = self.page_records[-1]
            self.run(self.query.next_page(Cursor(str(last["timestamp"]), str(last["record_id"]))))

    def run(self, query: LogQuery | None) -> None:
        """Ask the API for ``query``'s page (and the total), then show it."""
        if query is None:
            return
        self.button.disabled = self.prev.disabled = self.next.disabled = True
        self.status.text = "searching…"
        api, authorization = self.context.api, self.grant.authorization

        def work() -> tuple[dict, int | None]:
            page = api.get_json("/v1/search", authorization, query.params())
            total = api.get_json("/v1/count", authorization, query.params(with_cursor=False)) \
                if query.page == 1 else None
            return page, (total or {}).get("count") if total is not None else None

        in_background(self.doc, work, lambda result, error: self._show(query, result, error))

    def _show(self, query: LogQuery, result: tuple[dict, int | None] | None, error: Exception | None) -> None:
        self.button.disabled = False
        if error is not None:
            message = error.message if isinstance(error, ApiError) else str(error)
            self.status.text = f"<span class='error'>search failed: {html.escape(message)}</span>"
            self.prev.disabled = not self.query.cursors
            self.next.disabled = len(self.page_records) < self.query.page_size
            return
        page, total = result
        if total is not None:
            self.total = total
        self.query, self.page_records = query, page["records"]
        self.source.data = _rows(self.page_records)
        first = (query.page - 1) * query.page_size
        shown = f"{first + 1}–{first + len(self.page_records)}" if self.page_records else "none"
        self.status.text = (f"<span class='search-summary'>page {query.page}: records {shown} of "
                            f"{'?' if self.total is None else self.total}</span>")
        self.prev.disabled = not query.cursors
        self.next.disabled = len(self.page_records) < query.page_size
        self.downloads.text = (f"download: <a href='{html.escape(export_link(query, 'csv'))}' "
                               f"class='export-csv'>CSV</a> · <a href='{html.escape(export_link(query, 'parquet'))}' "
                               f"class='export-parquet'>Parquet</a>")


def build_search(doc: Document, context: PageContext) -> None:
    """Lay out the log search page on ``doc`` for the person it was made for."""
    doc.title = "logwarden · log search"
    grant = grant_of(doc, context.auth)
    if grant is None:
        doc.add_root(Div(text="<p>Your dashboard session has expired: reload the page.</p>", name="search_page"))
        return
    page = SearchPage(doc, context, grant)
    doc.add_root(page.layout())
    if page.prefill(arguments(doc)):
        page.run(page.query_from_widgets())
