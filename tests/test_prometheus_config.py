"""``logwarden prometheus-config`` without a stack: the jobs it writes for TLS and tokens, and its refusals."""
from __future__ import annotations

from pathlib import Path

from logwarden.cli import main
from logwarden.commands.prometheus_config import scrape_config


def test_https_targets_get_the_stack_certificate_and_the_token_file():
    config = scrape_config({"driver": "https://127.0.0.1:8081/metrics", "collector": "http://127.0.0.1:8080/metrics"},
                           "30s", Path("/run/lw/prometheus.token"), Path("/etc/lw/cert.pem"))
    collector, driver = config["scrape_configs"]
    assert (collector["job_name"], driver["job_name"]) == ("logwarden-collector", "logwarden-driver")
    assert driver["scheme"] == "https" and driver["tls_config"] == {"ca_file": "/etc/lw/cert.pem"}
    assert "tls_config" not in collector
    assert driver["static_configs"] == [{"targets": ["127.0.0.1:8081"], "labels": {"process": "driver"}}]
    assert driver["authorization"] == {"type": "Bearer", "credentials_file": "/run/lw/prometheus.token"}
    assert driver["scrape_interval"] == "30s" and driver["metrics_path"] == "/metrics"
    assert "authorization" not in scrape_config({"driver": "http://h:1/metrics"}, "15s")["scrape_configs"][0]


def test_refused_without_a_running_stack_or_with_a_bad_interval(tmp_path, capsys):
    assert main(["prometheus-config", "--data-dir", str(tmp_path)]) == 1
    assert "no running logwarden" in capsys.readouterr().err
    assert main(["prometheus-config", "--data-dir", str(tmp_path), "--scrape-interval", "soon"]) == 2
    assert "--scrape-interval" in capsys.readouterr().err
