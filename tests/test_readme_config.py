"""The configuration example in the README is a valid configuration (a promise in the README is a test)."""
from __future__ import annotations

import re
from pathlib import Path

from logwarden.settings import load_settings
from logwarden.testing.receivers import self_signed

README = Path(__file__).resolve().parents[1] / "README.md"


def _configuration_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Configuration", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_the_readme_configuration_example_loads(tmp_path: Path, monkeypatch) -> None:
    cert, key = self_signed(tmp_path)
    text = _configuration_example()
    text = text.replace("/etc/logwarden/cert.pem", str(cert)).replace("/etc/logwarden/key.pem", str(key))
    for name in re.findall(r"\$\{([A-Z_]+)\}", text):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    monkeypatch.chdir(README.parent)  # the example's rules path is relative to the checkout
    path = tmp_path / "logwarden.yaml"
    path.write_text(text)
    settings = load_settings(path)
    assert settings.collector.tokens == {"value-of-team_a_token": "team-a"}
    assert settings.storage.elasticsearch is not None
    assert settings.alerting.receivers["pagerduty"].routing_key == "value-of-pd_routing_key"
