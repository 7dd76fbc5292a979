"""Elasticsearch bulk: the official ``elasticsearch`` client's bulk helpers ship ECS documents to the
collector, which answers item by item in Elasticsearch's format; the records land with ECS fields
mapped, and the refused items are named in the answer and dead-lettered."""

from __future__ import annotations

import gzip

import orjson
import pytest
import requests
from elasticsearch import Elasticsearch, helpers

from tests.collector.protocol_server import TOKENS, attributes, server, stop  # noqa: F401  (server: a fixture)

TOKEN = next(iter(TOKENS))
ECS_DOCS = [
    {  # as Filebeat writes them: nested objects
        "@timestamp": "2026-11-22T10:00:00.123Z",
        "log": {"level": "warn", "logger": "app.db"},
        "service": {"name": "payment-service", "version": "1.4.2"},
        "message": "Database connection slow",
        "user": {"id": "u-42", "name": "alice"},
        "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"},
        "error": {"code": "DB_SLOW"},
        "event": {"duration": 2_500_000_000, "dataset": "payment.log"},
        "host": {"name": "web-1"},
        "ecs": {"version": "8.11.0"},
    },
    {  # dotted keys, as Logstash and Vector may send them
        "@timestamp": 1795341601000,
        "log.level": "ERROR",
        "service.name": "auth-service",
        "message": "Login failed",
        "user.name": "bob",
        "labels": {"region": "eu"},
    },
    {"@timestamp": "2026-11-22T10:00:02Z", "message": "no service, no level: the index names the service"},
]


def actions(docs, index="logs-app", op="index"):
    for n, doc in enumerate(docs):
        yield {"_op_type": op, "_index": index, "_id": f"id-{n}", "_source": doc}


def client(server, **options) -> Elasticsearch:
    return Elasticsearch(server.url, bearer_auth=TOKEN, request_timeout=30, **options)


def test_the_official_client_connects_and_its_bulk_helper_ships_ecs_documents(server):
    es = client(server)
    info = es.info()  # the client checks the X-Elastic-Product header of the answer
    assert info["version"]["number"].startswith("8.")
    ok, errors = helpers.bulk(es, actions(ECS_DOCS[:2]))
    assert (ok, errors) == (2, [])
    ok, errors = helpers.bulk(es, actions(ECS_DOCS[2:], index="checkout", op="create"))
    assert (ok, errors) == (1, [])
    es.close()
    stop(server)
    rows = {row["message"]: row for row in server.rows()}
    slow = rows["Database connection slow"]
    assert slow["service"] == "payment-service" and slow["level"] == "WARNING"
    assert slow["timestamp"].isoformat() == "2026-11-22T10:00:00.123000+00:00"
    assert (slow["user_id"], slow["request_id"], slow["error_code"]) == (
        "u-42", "4bf92f3577b34da6a3ce929d0e0e4736", "DB_SLOW"
    )
    assert slow["duration_ms"] == 2500.0
    assert slow["tenant"] == "acme" and slow["source"].startswith("elasticsearch:")
    assert attributes(slow) == {
        "log": {"logger": "app.db"},
        "user": {"name": "alice"},
        "event": {"dataset": "payment.log"},
        "host": {"name": "web-1"},
        "ecs": {"version": "8.11.0"},
        "service.version": "1.4.2",
        "level_original": "warn",
    }
    failed = rows["Login failed"]
    assert (failed["service"], failed["level"], failed["user_id"]) == ("auth-service", "ERROR", "bob")
    assert failed["timestamp"].isoformat() == "2026-11-22T10:00:01+00:00"  # epoch milliseconds
    assert attributes(failed) == {"labels": {"region": "eu"}}
    bare = rows["no service, no level: the index names the service"]
    assert (bare["service"], bare["level"]) == ("checkout", "INFO")


def test_refused_items_are_named_in_the_answer_and_dead_lettered_the_others_kept(server):
    es = client(server)
    docs = [ECS_DOCS[0], {"@timestamp": "yesterday", "message": "bad time"}, ECS_DOCS[1],
            {"@timestamp": "2026-11-22T10:00:00+24:00", "message": "offset out of range"}]
    with pytest.raises(helpers.BulkIndexError) as caught:
        helpers.bulk(es, actions(docs))
    assert [(f["index"]["status"], f["index"]["_id"]) for f in caught.value.errors] == [(400, "id-1"), (400, "id-3")]
    for failure in caught.value.errors:
        assert failure["index"]["error"]["type"] == "document_parsing_exception"
        assert "timestamp" in failure["index"]["error"]["reason"]
    ok, errors = helpers.bulk(
        es, [{"_op_type": "delete", "_index": "logs-app", "_id": "x"}, *actions(ECS_DOCS[2:])], raise_on_error=False
    )
    assert ok == 1 and errors[0]["delete"]["status"] == 400
    assert "not supported" in errors[0]["delete"]["error"]["reason"]
    es.close()
    stop(server)
    assert sorted(row["message"] for row in server.rows()) == sorted(
        [ECS_DOCS[0]["message"], ECS_DOCS[1]["message"], ECS_DOCS[2]["message"]]
    )
    letters = server.letters()
    assert {letter.protocol for letter in letters} == {"elasticsearch"}
    assert any(b"offset out of range" in letter.raw for letter in letters)
    bad = next(letter for letter in letters if b"bad time" in letter.raw)
    assert orjson.loads(bad.raw) == {"@timestamp": "yesterday", "message": "bad time"}  # the document as sent
    assert bad.tenant == "acme"


def test_every_refused_item_is_answered_beyond_the_reported_error_cap(server):
    good = b'{"index":{"_index":"bulk"}}\n{"@timestamp":"2026-11-22T10:00:00Z","message":"ok"}\n'
    bad = b'{"create":{"_index":"bulk"}}\n{"@timestamp":"not a time","message":"bad"}\n'
    body = bad * 1200 + good * 3 + bad * 10
    answer = requests.post(f"{server.url}/_bulk", data=body, headers={"Content-Type": "application/x-ndjson"})
    assert answer.status_code == 200 and answer.headers["X-Elastic-Product"] == "Elasticsearch"
    items = answer.json()["items"]
    assert len(items) == 1213 and answer.json()["errors"] is True
    assert [n for n, item in enumerate(items) if "index" in item and item["index"]["status"] == 201] == [
        1200, 1201, 1202
    ]
    assert all(item["create"]["status"] == 400 for n, item in enumerate(items) if n not in (1200, 1201, 1202))


def test_bulk_on_an_index_path_gzip_and_the_probing_routes(server):
    docs = [{"@timestamp": "2026-11-22T10:00:00Z", "message": f"m{n}", "log.level": "debug"} for n in range(50)]
    body = b"".join(b'{"create":{}}\n' + orjson.dumps(doc) + b"\n" for doc in docs)
    answer = requests.post(f"{server.url}/web-logs/_bulk", data=gzip.compress(body),
                           headers={"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"})
    assert answer.status_code == 200 and answer.json()["errors"] is False
    assert {item["create"]["_index"] for item in answer.json()["items"]} == {"web-logs"}
    for path in ("/", "/_license", "/_cluster/health"):
        probe = requests.get(server.url + path)
        assert probe.status_code == 200 and probe.headers["X-Elastic-Product"] == "Elasticsearch"
    assert requests.get(server.url + "/").json()["version"]["number"].startswith("8.")
    assert requests.get(server.url + "/_license").json()["license"]["status"] == "active"
    head = requests.head(server.url + "/")
    assert head.status_code == 200 and head.headers["X-Elastic-Product"] == "Elasticsearch"
    stop(server)
    rows = server.rows()
    assert len(rows) == 50 and {(row["service"], row["level"]) for row in rows} == {("web-logs", "DEBUG")}


@pytest.mark.parametrize(
    "body, reason",
    [
        (b'{"index":{}\n{"message":"m"}\n', "Malformed action/metadata line [1]"),
        (b'{"frobnicate":{}}\n{"message":"m"}\n', "unknown action"),
        (b'{"index":{"_index":"a"}}\n', "not followed by a document line"),
        (b"\n\n", "no bulk items"),
    ],
)
def test_a_malformed_bulk_request_is_refused_whole_in_elasticsearchs_words(server, body, reason):
    answer = requests.post(f"{server.url}/_bulk", data=body)
    assert answer.status_code == 400 and answer.headers["X-Elastic-Product"] == "Elasticsearch"
    error = answer.json()["error"]
    assert error["type"] == "illegal_argument_exception" and reason in error["reason"]
    assert answer.json()["status"] == 400


def test_a_truncated_gzip_body_is_refused_and_nothing_is_accepted(server):
    body = b"".join(
        b'{"index":{"_index":"t"}}\n' + orjson.dumps({"@timestamp": "2026-11-22T10:00:00Z", "message": f"m{n}"}) + b"\n"
        for n in range(2000)
    )
    packed = gzip.compress(body)
    answer = requests.post(f"{server.url}/_bulk", data=packed[: len(packed) // 2],
                           headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400 and answer.headers["X-Elastic-Product"] == "Elasticsearch"
    stop(server)
    assert server.rows() == []


# --- the per-item fast path (BatchDecoder.mapped with the attributes the decoder serialized) agrees with
# --- validation record by record, on generated ECS documents ------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from logwarden.collector.batch import BatchDecoder  # noqa: E402
from logwarden.collector.protocols.elasticsearch import ElasticsearchBulk  # noqa: E402
from logwarden.collector.validation import RecordLimits, RecordValidator, SkewLimits  # noqa: E402
from tests.collector.strategies import JSON_VALUES  # noqa: E402
from tests.collector.test_mapped_batch import outcome  # noqa: E402

ANY_TIME = BatchDecoder(RecordValidator(skew=SkewLimits.unlimited(), limits=RecordLimits(max_fields=20, max_depth=5)),
                        1 << 20, 1 << 26)


@st.composite
def ecs_documents(draw) -> dict:
    doc: dict = {}
    nested = draw(st.booleans())

    def put(parent: str, child: str, value) -> None:
        if nested:
            doc.setdefault(parent, {})[child] = value
        else:
            doc[f"{parent}.{child}"] = value

    if draw(st.booleans()):
        doc["@timestamp"] = draw(st.sampled_from(["2026-11-22T10:00:00Z", "2026-11-22T10:00:00.123456789Z",
                                                  "2026-11-22 10:00:00", "2026-11-22", "yesterday", ""])
                                 | st.integers(-5, 2**45) | st.floats(allow_nan=True) | st.none())
    if draw(st.booleans()):
        put("log", "level", draw(st.sampled_from(["info", "WARN", "Error", "notice", "LOUD", "3"]) | st.integers(0, 70)
                                 | JSON_VALUES))
    for parent, child in (("service", "name"), ("user", "id"), ("user", "name"), ("trace", "id"),
                          ("error", "code"), ("event", "duration"), ("event", "original"), ("service", "version")):
        if draw(st.integers(0, 2)) == 0:
            put(parent, child, draw(JSON_VALUES | st.integers(0, 10**12)))
    if draw(st.booleans()):
        doc["message"] = draw(st.text(max_size=20) | JSON_VALUES)
    for name in ("timestamp", "level", "service", "user_id", "duration_ms", "message_truncated_from"):
        if draw(st.integers(0, 5)) == 0:
            doc[name] = draw(JSON_VALUES)
    doc.update(draw(st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=4)))
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ecs_documents(), min_size=1, max_size=8))
def test_bulk_fast_path_equals_validation_record_by_record(docs):
    body = b"".join(b'{"index":{"_index":"idx"}}\n' + orjson.dumps(doc) + b"\n" for doc in docs)
    items = ElasticsearchBulk().items(body, None)  # the same items: a document without time gets "now"
    fast = ANY_TIME.mapped(items)
    slow = ANY_TIME.records(items)
    assert outcome(fast) == outcome(slow)
