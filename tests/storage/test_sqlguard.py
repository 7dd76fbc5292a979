"""The --where guard: plain conditions over record columns pass, anything else is refused."""
from __future__ import annotations

import pytest

from logwarden.storage.columns import column_names
from logwarden.storage.sqlguard import UnsafeCondition, validate_condition

ALLOWED = [
    "level = 'ERROR' AND duration_ms > 250",
    "Level IN ('ERROR', 'CRITICAL') OR error_code IS NOT NULL",
    "message LIKE '%timeout%' AND NOT (service ILIKE 'test%')",
    "duration_ms BETWEEN 10 AND 20",
    "CASE WHEN level = 'ERROR' THEN duration_ms ELSE 0 END > 5",
    "json_extract_string(attributes, '$.http.status') = '503'",
    "regexp_matches(message, 'user [0-9]+') AND lower(user_id) <> 'bot'",
    "timestamp > now() - INTERVAL 1 HOUR",
    "CAST(duration_ms AS INTEGER) % 2 = 0",
]
REFUSED = [
    "level = 'ERROR'; DROP TABLE src",
    "level = 'ERROR' -- and the rest",
    "level = 'ERROR' /* comment */",
    "EXISTS (SELECT 1)",
    "level IN (SELECT level FROM src)",
    "record_id = (SELECT max(record_id) FROM read_parquet('/tmp/x.parquet'))",
    "length(read_text('/etc/passwd')) > 0",
    "getenv('HOME') IS NOT NULL",
    "1=1) UNION ALL SELECT * FROM src WHERE (1=1",
    "src.level = 'ERROR'",
    "secret_column = 1",
    "",
    "level = ?",
    "count(*) > 1 FILTER (WHERE true)",
]


@pytest.mark.parametrize("condition", ALLOWED)
def test_plain_conditions_pass(condition):
    assert validate_condition(condition, column_names()) == condition


@pytest.mark.parametrize("condition", REFUSED)
def test_anything_else_is_refused(condition):
    with pytest.raises(UnsafeCondition):
        validate_condition(condition, column_names())
