"""A child process that must not outlive its parent: ``exit_with_parent``.

``logwarden up`` runs the collector as a child process. When ``logwarden up`` itself dies without
stopping it (``kill -9``, an OOM kill), the orphaned collector would keep its ports and its
write-ahead log, and the restarted stack (a service manager's ``Restart=always``) could not start its
own. The parent names itself in ``LOGWARDEN_PARENT_PID`` when it starts the child; the child calls
:func:`exit_with_parent`, which watches its parent pid in a daemon thread and, once the parent is gone
(the child was re-parented), sends the child ``signal`` (SIGTERM by default: the collector stops as on
``logwarden up``'s own stop, flushing its open batch; what it acknowledged is in its write-ahead log
anyway).

A polling watchdog rather than Linux's ``PR_SET_PDEATHSIG``: the latter fires when the *thread* that
started the child exits, and ``logwarden up`` may restart the collector from any thread; the watchdog
works on every POSIX system. It reacts within ``interval`` seconds.
"""
from __future__ import annotations

import logging
import os
import signal as signals
import threading
from typing import Callable

log = logging.getLogger(__name__)
PARENT_ENV = "LOGWARDEN_PARENT_PID"


def parent_env(pid: int | None = None) -> dict[str, str]:
    """The environment entry a parent gives the child it starts (its own pid by default)."""
    return {PARENT_ENV: str(os.getpid() if pid is None else pid)}


def _terminate_self(sig: int) -> None:
    os.kill(os.getpid(), sig)


def exit_with_parent(signal: int = signals.SIGTERM, interval: float = 0.5, parent: int | None = None,
                     on_orphaned: Callable[[int], None] | None = None,
                     getppid: Callable[[], int] = os.getppid) -> threading.Thread | None:
    """Watch the parent named in ``LOGWARDEN_PARENT_PID`` (or ``parent``); when it is gone, call
    ``on_orphaned(signal)`` (default: send ``signal`` to this process). Returns the watchdog thread,
    or None when no parent is named. If the parent already died before this call, acts at once."""
    if parent is None:
        text = os.environ.get(PARENT_ENV, "")
        if not text.isdigit():
            return None
        parent = int(text)
    act = on_orphaned or _terminate_self
    stop = threading.Event()

    def watch() -> None:
        while getppid() == parent:
            if stop.wait(interval):
                return
        log.error("parent process %d is gone; stopping (signal %d)", parent, signal)
        act(signal)

    thread = threading.Thread(target=watch, name="parent-watchdog", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]  (lets tests end the watch)
    thread.start()
    return thread
