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
    "duration_ms > 5000 AND level = 'ERROR'",
    "message LIKE '%(x)%'",
    "message LIKE '%)%' OR message LIKE '(%'",
    "((level = 'ERROR') AND (duration_ms > 1))",
    "service = '日本語(' AND message = $$)$$",
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
    "1=1) OR (1=1",
    "level = 'ERROR') OR (true",
    "1=1) AND (1=1",
    "(level = 'ERROR'",
    "level = 'ERROR')",
    "service = '日本語' ) OR ( 1=1",
]


@pytest.mark.parametrize("condition", ALLOWED)
def test_plain_conditions_pass(condition):
    assert validate_condition(condition, column_names()) == condition


@pytest.mark.parametrize("condition", REFUSED)
def test_anything_else_is_refused(condition):
    with pytest.raises(UnsafeCondition):
        validate_condition(condition, column_names())


def test_the_parser_check_alone_refuses_a_condition_that_closes_its_parenthesis(monkeypatch):
    """Defence in depth: without the tokenizer's parenthesis check, the parse of
    ``first AND (condition) AND last`` still refuses ``1=1) OR (1=1``."""
    from logwarden.storage import sqlguard

    monkeypatch.setattr(sqlguard, "_check_parentheses", lambda condition: None)
    with pytest.raises(UnsafeCondition):
        validate_condition("1=1) OR (1=1", column_names())
    assert validate_condition("level = 'ERROR' AND (duration_ms > 1 OR user_id IS NULL)", column_names())


def test_a_where_that_closes_its_parenthesis_cannot_override_the_other_filters(tmp_path):
    from logwarden.storage import Lake
    from logwarden.storage.search import SearchError, SearchRequest, count

    from tests.storage.sample import rows, table

    lake = Lake(tmp_path)
    lake.commit_batch("b1", table(rows(40)))
    confined = SearchRequest(tenant="acme", levels=("ERROR",))
    assert count(lake, confined) == 4
    with pytest.raises(SearchError, match="one expression"):
        count(lake, SearchRequest(tenant="acme", levels=("ERROR",), where="1=1) OR (1=1"))
    assert count(lake, SearchRequest(tenant="acme", levels=("ERROR",), where="duration_ms >= 0")) == 4
