"""The built wheel is the whole product: one import name, the schemas inside, and it runs.

The wheel is built from the checkout, installed into a fresh virtual environment outside the
repository, and used from a neutral working directory: ``logwarden rules check`` on the rules
file the wheel carries, and ``logwarden collector`` taking one record over HTTP. The new
environment borrows the third-party dependencies already installed in ``.venv`` (a path file
added after the install), so no download is needed; logwarden itself comes from the wheel alone.
"""
from __future__ import annotations

import os
import shutil
import signal
import site
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

from logwarden.testing.cluster import free_port

REPO = Path(__file__).resolve().parents[1]
SCHEMA_FILES = {"log_schema.yaml", "anomaly_schema.yaml", "service_inventory.yaml"}


def _source_copy(target: Path) -> Path:
    """The checkout's files (tracked, and untracked ones git does not ignore) copied to ``target``, so
    the build neither writes into the checkout nor packs a stale ``build/`` left there."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True)
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): build in place
        return REPO
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    source = _source_copy(tmp_path_factory.mktemp("source"))
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=300, cwd=build,
        env={**os.environ, "TMPDIR": str(build)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels = list(out.glob("logwarden-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                           "--no-index", "--quiet", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    # Third-party dependencies from the test environment, after the venv's own site-packages.
    (purelib / "zz_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return root


def _run(venv: Path, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def test_the_wheel_holds_one_import_name_and_the_schemas(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"logwarden", next(t for t in top if t.endswith(".dist-info"))}, sorted(top)
    assert SCHEMA_FILES <= {Path(n).name for n in names if n.startswith("logwarden/schemas/")}
    assert "logwarden/collector/openapi.yaml" in names
    for layer in ("collector", "processing", "monitoring", "alerting", "storage", "dashboard", "formats", "common"):
        assert f"logwarden/{layer}/__init__.py" in names, layer
    compiled = {Path(n).name.split(".")[0] for n in names if n.endswith(".so")}
    assert {"_otlp_wire", "_loki_wire", "_forward_fast", "_jsontext"} <= compiled, sorted(compiled)  # the decoders


def test_the_installed_wheel_imports_logwarden_only_and_reads_its_own_schemas(venv: Path, tmp_path: Path) -> None:
    probe = ("import importlib.util, logwarden.schemas as s, logwarden.collector as c\n"
             "print(s.ANOMALY_SCHEMA_PATH)\nprint(c.__file__)\n"
             "print([n for n in ('collector','processing','monitoring','alerting','storage','dashboard','formats',"
             "'common','schemas') if importlib.util.find_spec(n)])\n")
    done = _run(venv, "python", "-c", probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    schema_path, collector_file, bare = done.stdout.splitlines()
    assert schema_path.startswith(str(venv)) and collector_file.startswith(str(venv)), done.stdout
    assert bare == "[]", f"bare top-level names importable: {bare}"

    rules = _run(venv, "logwarden", "rules", "check", schema_path, cwd=tmp_path)
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_the_installed_collector_acknowledges_a_record(venv: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    process = subprocess.Popen(
        [str(venv / "bin" / "logwarden"), "collector", "--data-dir", str(tmp_path / "data"), "--http-port",
         str(port), "--no-tcp", "--no-syslog"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "collector from the wheel did not start"
            time.sleep(0.2)
        record = {"timestamp": "2026-11-22T10:00:00Z", "level": "ERROR", "service": "billing",
                  "message": "Database connection failed"}
        answer = requests.post(f"{url}/v1/logs", json=[record], timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
