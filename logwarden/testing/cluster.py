"""Real processes for tests and the soak: a Ray head of its own on 127.0.0.1, free ports, and
stopping exactly the processes one started."""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
MB = 1024 * 1024


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def terminate(processes: list[psutil.Process], timeout: float = 10.0) -> None:
    for proc in processes:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)


class RayHead:
    """``ray start --head`` on 127.0.0.1 with a fresh temp dir and a token of its own."""

    # Seconds between SIGTERM and SIGKILL on ``stop``: the head's gcs_server outlasts 10 s of SIGTERM while
    # its raylet stops, and a stopped head keeps nothing (its temp dir is removed), so it is not waited for.
    STOP_GRACE = 3.0

    def __init__(self, temp_dir: Path) -> None:
        self.temp_dir = temp_dir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        token_path = temp_dir / "auth_token"
        token_path.write_text(secrets.token_hex(32))
        self.env = {**RAY_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)}

    def start(self) -> "RayHead":
        """Start the head; raises if ``ray start`` fails."""
        command = [str(BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
                   "--dashboard-host", "127.0.0.1", "--include-dashboard", "false", "--num-cpus", "2",
                   # ports Ray would otherwise take at fixed numbers (another head on this machine may hold them)
                   "--dashboard-port", str(free_port()), "--ray-client-server-port", str(free_port()),
                   "--dashboard-agent-listen-port", str(free_port()),
                   "--object-store-memory", str(400 * MB), "--temp-dir", str(self.temp_dir),
                   "--disable-usage-stats"]
        subprocess.run(command, check=True, env={**os.environ, **self.env}, capture_output=True, timeout=180)
        return self

    def processes(self) -> list[psutil.Process]:
        """Every process of this head: those naming its temp dir, and their descendants."""
        roots = []
        text = str(self.temp_dir)
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any(text in part for part in proc.info["cmdline"] or ()):
                    roots.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        found = {p.pid: p for p in roots}
        for root in roots:
            try:
                for child in root.children(recursive=True):
                    found.setdefault(child.pid, child)
            except psutil.NoSuchProcess:
                continue
        return list(found.values())

    def detector_actors(self) -> list[psutil.Process]:
        """The worker processes of this head running a ``DetectorActor``."""
        return [p for p in self.processes() if " ".join(cmdline(p)).startswith("ray::DetectorActor")]

    def stop(self) -> None:
        """Kill every process of this head (and nothing else), then remove its temp dir."""
        terminate(self.processes(), timeout=self.STOP_GRACE)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
