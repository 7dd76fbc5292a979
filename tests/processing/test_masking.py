"""Sensitive-data masking on real sample lines and crafted cases."""
from __future__ import annotations

from pathlib import Path

import pytest

from logwarden.formats import parse, read_records
from logwarden.processing.masking import Masker, MaskingConfig, Rule, luhn_ok, mask_record, mask_text


def sample_lines(shared_data: Path, rel: str) -> list[bytes]:
    """Raw lines of a sample file."""
    return (shared_data / "formats" / rel).read_bytes().splitlines()


def test_pino_credit_card_from_real_sample(shared_data: Path) -> None:
    line = sample_lines(shared_data, "json/lnav/logfile_pino.0")[0].decode()
    assert "4929-6495-8333-3657" in line
    masked = mask_text(line)
    assert "4929-6495-8333-3657" not in masked and "***3657" in masked
    record = mask_record(parse(line.encode()).to_dict())
    card = record["attributes"]["request"]["creditCard"]
    assert card["creditCardNumber"] == "***3657"
    assert card["creditCardCvv"] == "***"
    assert card["creditCardExpirationYear"] != "***"


def test_real_lines_without_secrets_are_unchanged(shared_data: Path) -> None:
    """sshd "Failed password for root", Windows "Elevated Token: Yes", base64 query strings."""
    auth = [line.decode() for line in sample_lines(shared_data, "syslog/elastic-examples/auth.log")[:3000]]
    failed = [line for line in auth if "Failed password" in line]
    assert failed and all(mask_text(line) == line for line in failed)
    snare = sample_lines(shared_data, "windows/rsyslog-mmsnareparse/sample-events.data")[0].decode()
    assert "Elevated Token:  %%1843" in snare and mask_text(snare) == snare
    apache = [line.decode() for line in sample_lines(shared_data, "access/elastic-examples/apache_logs")
              if b"page=eyJ" in line]
    assert apache and all(mask_text(line) == line for line in apache)


def test_masking_whole_sample_files_is_stable(shared_data: Path) -> None:
    masker = Masker()
    for record in read_records(shared_data / "formats/cloudtrail/awsdocs/cloudtrail-log-file-examples.records.json"):
        masked = masker.mask_record(parse(record).to_dict())
        assert masker.mask_record(masked) == masked


@pytest.mark.parametrize(("text", "expected"), [
    ("user=bob password=hunter2 ok", "user=bob password=*** ok"),
    ("db_password = 's3 cret' x", "db_password = '***' x"),
    ('{"password": "s3cr\\"et", "user": "x"}', '{"password": "***", "user": "x"}'),
    ("api_key: xyz123", "api_key: ***"),
    ("GET /login?user=a&token=abc123&x=1", "GET /login?user=a&token=***&x=1"),
    ("Authorization: Bearer abcdefghijklmnop.qrs", "Authorization: Bearer ***"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcDEF_123 end", "jwt *** end"),
    ("key AKIAIOSFODNN7EXAMPLE and ASIAY34FZKBOKMUTVV7A", "key *** and ***"),
    ("card 4929 6495 8333 3657 ok", "card ***3657 ok"),
    ("amex 378282246310005.", "amex ***0005."),
    ("postgres://admin:pw123@db:5432/x", "postgres://admin:***@db:5432/x"),
    ("token_type=Bearer max_tokens=100", "token_type=Bearer max_tokens=100"),
    ("Elevated Token: Yes", "Elevated Token: Yes"),
    ("mail bob@example.com", "mail bob@example.com"),
])
def test_mask_text_cases(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_non_luhn_sixteen_digits_are_not_masked() -> None:
    assert not luhn_ok("4929649583333658")
    assert mask_text("id 4929649583333658 x") == "id 4929649583333658 x"
    assert mask_text("ts 1745532517537 ms") == "ts 1745532517537 ms"


def test_emails_are_optional() -> None:
    config = MaskingConfig(emails=True)
    assert mask_text("mail bob.smith+x@example.co.uk", config) == "mail ***@example.co.uk"


def test_config_from_dict_with_extra_rules() -> None:
    config = MaskingConfig.from_dict({
        "mask": "[REDACTED]", "credit_cards": False,
        "extra_rules": [{"name": "ssn", "pattern": r"\b\d{3}-\d{2}-\d{4}\b", "replacement": "[SSN]"}],
    })
    assert config.extra_rules == (Rule("ssn", r"\b\d{3}-\d{2}-\d{4}\b", "[SSN]"),)
    masked = mask_text("ssn 123-45-6789 pass=x card 4929649583333657", config)
    assert masked == "ssn [SSN] pass=[REDACTED] card 4929649583333657"


def test_config_rejects_unknown_options_and_bad_regex() -> None:
    with pytest.raises(ValueError, match="unknown masking option"):
        MaskingConfig.from_dict({"emails": True, "colour": "red"})
    with pytest.raises(ValueError, match="bad regex"):
        MaskingConfig.from_dict({"extra_rules": [{"name": "x", "pattern": "("}]})


def test_disabled_config_masks_nothing() -> None:
    config = MaskingConfig(enabled=False)
    assert mask_text("password=x", config) == "password=x"
    assert mask_record({"password": "x"}, config) == {"password": "x"}


def test_mask_record_by_key_and_value() -> None:
    record = {"message": "login password=hunter2", "attributes": {
        "db_password": "p", "X-Api-Key": "k", "accessToken": "t", "token_type": "Bearer",
        "max_tokens": 100, "enabled": True, "headers": [{"Authorization": "Bearer abcdefghijk"}],
        "note": "AKIAIOSFODNN7EXAMPLE"}}
    out = mask_record(record)
    attrs = out["attributes"]
    assert out["message"] == "login password=***"
    assert (attrs["db_password"], attrs["X-Api-Key"], attrs["accessToken"]) == ("***", "***", "***")
    assert (attrs["token_type"], attrs["max_tokens"], attrs["enabled"]) == ("Bearer", 100, True)
    assert attrs["headers"] == [{"Authorization": "***"}] and attrs["note"] == "***"
    assert record["attributes"]["db_password"] == "p"  # input untouched


def test_prose_after_the_word_token_is_kept():
    from logwarden.processing.masking import mask_text

    assert mask_text("Token refreshed for user u-1") == "Token refreshed for user u-1"
    assert mask_text("token ab12cd34ef") == "token ***"
    assert mask_text("Authorization: Bearer abcdefghijkl") == "Authorization: Bearer ***"


def test_mask_array_equals_mask_text_row_by_row(shared_data):
    import pyarrow as pa

    from logwarden.processing.masking import Masker

    masker = Masker()
    lines = []
    for path in sorted((shared_data / "formats").rglob("*.log"))[:20]:
        lines += path.read_text(errors="replace").splitlines()[:200]
    lines += ["password=hunter2", '{"api_key": "abc"}', "card 4111 1111 1111 1111", None, "",
              "Token refreshed for user u-1", "token ab12cd34ef", "TOKEN abcdefghijklmnopqrstu", "token\tAb-1234x",
              "token short1", "token abcdefghijklmnop"]
    assert masker.mask_array(pa.array(lines, pa.string())).to_pylist() == \
        [None if line is None else masker.mask_text(line) for line in lines]
