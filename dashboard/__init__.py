"""The logwarden dashboard: a Bokeh server app over the lake, the alert store and the running pipeline.

``serve(port, data_dir, links)`` starts it in a background thread and returns a handle with ``stop()``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logwarden.dashboard.server import DashboardHandle


def serve(port: int, data_dir: Path, links: dict[str, str], host: str = "127.0.0.1", **options) -> "DashboardHandle":
    """Serve the dashboard on ``host:port``; see :func:`dashboard.server.serve`."""
    from logwarden.dashboard.server import serve as _serve

    return _serve(port, data_dir, links, host, **options)


__all__ = ["serve"]
