"""A child started by ``logwarden up`` stops when its parent dies (``common.parentdeath``), and a
collector left over by a killed ``logwarden up`` is stopped before a new one starts
(``supervisor.CollectorProcess.stop_orphan``)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import psutil

from logwarden.common.parentdeath import PARENT_ENV, exit_with_parent, parent_env


def test_the_watchdog_acts_when_the_parent_pid_changes():
    parents = iter([100, 100, 100, 1])
    heard: list[int] = []
    thread = exit_with_parent(signal.SIGTERM, interval=0.01, parent=100, on_orphaned=heard.append,
                              getppid=lambda: next(parents, 1))
    thread.join(5)
    assert heard == [signal.SIGTERM]


def test_the_watchdog_stays_quiet_while_the_parent_lives():
    heard: list[int] = []
    thread = exit_with_parent(interval=0.01, parent=os.getppid(), on_orphaned=heard.append)
    time.sleep(0.1)
    thread.stop.set()
    thread.join(5)
    assert heard == [] and not thread.is_alive()


def test_no_parent_named_no_watchdog(monkeypatch):
    monkeypatch.delenv(PARENT_ENV, raising=False)
    assert exit_with_parent() is None
    monkeypatch.setenv(PARENT_ENV, "not-a-pid")
    assert exit_with_parent() is None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_a_child_exits_when_its_parent_is_killed(tmp_path: Path):
    """A parent starts a child that calls ``exit_with_parent`` (as ``logwarden collector`` does) and
    sleeps; ``kill -9`` of the parent ends the child within seconds."""
    child_code = textwrap.dedent("""
        import time
        from logwarden.common.parentdeath import exit_with_parent
        exit_with_parent(interval=0.1)
        print("ready", flush=True)
        time.sleep(120)
    """)
    parent_code = textwrap.dedent(f"""
        import os, subprocess, sys, time
        from logwarden.common.parentdeath import parent_env
        child = subprocess.Popen([sys.executable, "-c", {child_code!r}], env={{**os.environ, **parent_env()}},
                                 stdout=open({str(tmp_path / 'child.out')!r}, "w"))
        print(child.pid, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + 30
        while "ready" not in (tmp_path / "child.out").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert psutil.pid_exists(child_pid)
        parent.kill()
        parent.wait(10)
        assert _wait_gone(child_pid, 10), "the child outlived its parent"
    finally:
        parent.kill()
        try:
            psutil.Process(child_pid).kill()
        except psutil.NoSuchProcess:
            pass


def test_parent_env_names_this_process():
    assert parent_env() == {PARENT_ENV: str(os.getpid())}


def _collector(tmp_path: Path):
    from logwarden.supervisor import CollectorProcess

    return CollectorProcess(tmp_path, "127.0.0.1", 1, None, None, tmp_path / "collector.log")


def test_a_left_over_collector_is_stopped_before_a_new_one_starts(tmp_path: Path):
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        supervisor = _collector(tmp_path)
        supervisor._write_pid(orphan.pid)
        assert supervisor.orphan().pid == orphan.pid
        assert supervisor.stop_orphan(timeout=10)
        orphan.wait(10)  # (psutil reaped it already: the status is gone)
        assert orphan.poll() is not None
        assert supervisor.orphan() is None and not supervisor.stop_orphan()
    finally:
        orphan.kill()
        orphan.wait()


def test_a_recycled_pid_is_not_taken_for_the_left_over_collector(tmp_path: Path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        supervisor = _collector(tmp_path)
        created = psutil.Process(bystander.pid).create_time()
        supervisor.pid_path.write_bytes(orjson.dumps({"pid": bystander.pid, "created": created - 50}))
        assert supervisor.orphan() is None
        assert not supervisor.stop_orphan(timeout=1)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
