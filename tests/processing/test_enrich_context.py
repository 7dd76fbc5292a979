"""Security enrichment: where an address is (GeoIP), whether a record mentions a threat indicator, who
its user is; on Arrow tables, through the batch functions and the default rules."""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from logwarden.common.yamlconf import ConfigError
from logwarden.monitoring import DetectorSet, load_rules
from logwarden.processing.batch import finalize_batch, prepare_batch
from logwarden.processing.config import ProcessingConfig
from logwarden.processing.enrich import Context, Inventory
from logwarden.processing.templates import TemplateMiner
from logwarden.processing.geoip import GeoConfig, address_columns, distinct_addresses, geo_columns
from logwarden.processing.threatintel import Indicators, ThreatConfig, ThreatFeed, ThreatIndex, load_index
from logwarden.processing.users import UsersConfig
from logwarden.processing.watched import CACHE
from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.storage import Lake
from tests.monitoring.helpers import rec, table

TOR_EXIT = "185.220.101.47"  # Germany, "Stiftung Erneuerbare Freiheit" in the embedded GeoLite2 data


def enriched(records: list[dict], **context) -> list[dict]:
    inventory = dataclasses.replace(Inventory(), context=Context(**context))
    return inventory.enrich(table(records)).to_pylist()


def feed(path, text: str, name: str = "list", confidence: int = 50) -> ThreatFeed:
    path.write_text(text)
    return ThreatFeed(str(path), name, confidence)


@pytest.fixture(autouse=True)
def fresh_cache():
    CACHE.clear()
    yield
    CACHE.clear()


# --- GeoIP ---------------------------------------------------------------------------------------

def test_addresses_are_found_by_field_name_by_shape_and_in_the_message():
    records = table([
        rec(0, attributes='{"remote_addr":"8.8.8.8","path":"/"}'),
        rec(1, attributes='{"src_ip":"10.1.2.3","dst_ip":"1.1.1.1"}'),
        rec(2, attributes='{"source":{"port":22,"ip":"192.168.0.9"},"destination":{"ip":"9.9.9.9"}}'),
        rec(3, attributes='{"peer":"2001:4860:4860::8888"}'),
        rec(4, message="Failed password for root from 127.0.0.1 port 22 ssh2"),
        rec(5, attributes='{"sourceIPAddress":"203.0.113.9"}'),
        rec(6, attributes='{"time":"10:30:00","n":"4"}'),
    ])
    found = {role: values.to_pylist() for role, values in address_columns(records).items()}
    assert found["client"] == ["8.8.8.8", None, None, "2001:4860:4860::8888", "127.0.0.1", "203.0.113.9", None]
    assert found["source"] == [None, "10.1.2.3", "192.168.0.9", None, None, None, None]
    assert found["destination"] == [None, "1.1.1.1", "9.9.9.9", None, None, None, None]


def test_embedded_database_gives_country_and_as_and_labels_private_ranges():
    rows = enriched([rec(0, attributes='{"client_ip":"8.8.8.8","dst_ip":"2001:4860:4860::8888"}'),
                     rec(1, attributes='{"client_ip":"10.0.0.7","dst_ip":"::1"}'),
                     rec(2, attributes='{"client_ip":"100.64.3.2","dst_ip":"169.254.1.1"}'),
                     rec(3, attributes=f'{{"client_ip":"{TOR_EXIT}","dst_ip":"0.0.0.0"}}')])
    view = [(r["client_scope"], r["client_country"], r["client_as_org"], r["destination_scope"],
             r["destination_country"]) for r in rows]
    assert view == [("public", "US", "GOOGLE", "public", "US"), ("private", None, None, "loopback", None),
                    ("private", None, None, "link-local", None),
                    ("public", "DE", "Stiftung Erneuerbare Freiheit", "reserved", None)]
    assert all(r["client_asn"] is None for r in rows)  # the embedded data names the AS, without its number


def test_a_maxmind_database_adds_city_and_as_number(tmp_path):
    mmdb_writer = pytest.importorskip("mmdb_writer", reason="mmdb-writer (pip) is needed to write a test .mmdb")
    from netaddr import IPSet

    city = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    city.insert_network(IPSet(["81.2.69.0/24"]), {"country": {"iso_code": "GB"},
                                                   "city": {"names": {"en": "London"}}})
    city.to_db_file(str(tmp_path / "city.mmdb"))
    asn = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN")
    asn.insert_network(IPSet(["81.2.64.0/20"]), {"autonomous_system_number": 20712,
                                                  "autonomous_system_organization": "Andrews & Arnold Ltd"})
    asn.to_db_file(str(tmp_path / "asn.mmdb"))
    config = ProcessingConfig.from_dict({"geoip": {"database": str(tmp_path / "city.mmdb"),
                                                   "asn_database": str(tmp_path / "asn.mmdb")}})
    rows = config.inventory.enrich(table([rec(0, attributes='{"client_ip":"81.2.69.160"}'),
                                          rec(1, attributes='{"client_ip":"8.8.8.8"}')])).to_pylist()
    assert [(r["client_country"], r["client_city"], r["client_asn"], r["client_as_org"]) for r in rows] == [
        ("GB", "London", 20712, "Andrews & Arnold Ltd"), (None, None, None, None)]


def test_geo_lookups_run_once_per_distinct_address():
    addresses = {"client": pa.array(["8.8.8.8"] * 5000 + ["1.1.1.1"] * 5000), "source": pa.nulls(10_000, pa.string()),
                 "destination": pa.nulls(10_000, pa.string())}
    columns = geo_columns(distinct_addresses(addresses), GeoConfig())
    assert columns["client_country"].value_counts().to_pylist() in (
        [{"values": "US", "counts": 5000}, {"values": "AU", "counts": 5000}],
        [{"values": "US", "counts": 5000}, {"values": None, "counts": 5000}])
    assert len(columns["client_ip"]) == 10_000


# --- threat intelligence -------------------------------------------------------------------------

def test_every_file_format_and_every_kind_of_indicator_matches(tmp_path):
    plain = feed(tmp_path / "plain.txt", "# comment\n198.51.100.0/24\n2001:db8:bad::/48\nevil.example\n", "plain", 60)
    csv = feed(tmp_path / "vendor.csv", "indicator,confidence\nhttp://phish.example/login,95\n"
                                        "198.51.100.77,85\n", "vendor")
    misp = feed(tmp_path / "misp.csv", "uuid,event_id,category,type,value,comment,to_ids,date\n"
                                       "1,7,Network activity,ip-dst|port,203.0.113.5|443,,1,20261201\n"
                                       "2,7,Payload delivery,filename|sha256,drop.exe|" + "ab" * 32 + ",,1,20261201\n"
                                       "3,7,Other,email-src,x@y.example,,1,20261201\n", "misp", 70)
    stix = feed(tmp_path / "bundle.json", """{"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "id": "indicator--1", "confidence": 80, "pattern_type": "stix",
         "pattern": "[domain-name:value = 'c2.example'] OR [ipv4-addr:value = '192.0.2.66']"},
        {"type": "indicator", "id": "indicator--2", "pattern_type": "stix",
         "pattern": "[file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E']"},
        {"type": "indicator", "id": "indicator--3", "revoked": true, "pattern": "[ipv4-addr:value = '9.9.9.9']"}]}""",
                "stix", 40)
    config = ThreatConfig((plain, csv, misp, stix))
    rows = enriched([
        rec(0, attributes='{"client_ip":"198.51.100.77"}'),              # CIDR and exact IP: the exact one
        rec(1, attributes='{"client_ip":"198.51.100.3"}'),               # in the CIDR
        rec(2, attributes='{"dst_ip":"2001:db8:bad:1::9"}'),             # IPv6 CIDR
        rec(3, attributes='{"query":"WWW.Sub.Evil.Example."}'),          # domain suffix, any case
        rec(4, attributes='{"url":"http://phish.example/login"}'),       # URL
        rec(5, attributes='{"referrer":"https://c2.example/a?b=1"}'),    # the host of a URL
        rec(6, attributes='{"sha256":"' + "AB" * 32 + '"}'),             # MISP composite hash type
        rec(7, attributes='{"md5":"d41d8cd98f00b204e9800998ecf8427e"}'),  # STIX file hash
        rec(8, message="connection from 203.0.113.5 refused"),           # MISP ip-dst|port, in the message
        rec(9, attributes='{"client_ip":"9.9.9.9","domain":"notevil.example"}'),  # revoked; not a suffix
        rec(10, attributes='{"client_ip":"192.0.2.66"}'),                # STIX IPv4
    ], threat_intel=config)
    view = [(r["threat_matched"], r["threat_indicator"], r["threat_type"], r["threat_list"], r["threat_confidence"])
            for r in rows]
    assert view == [
        (True, "198.51.100.77", "ip", "vendor", 85), (True, "198.51.100.0/24", "ip", "plain", 60),
        (True, "2001:db8:bad::/48", "ip", "plain", 60), (True, "evil.example", "domain", "plain", 60),
        (True, "http://phish.example/login", "url", "vendor", 95), (True, "c2.example", "domain", "stix", 80),
        (True, "ab" * 32, "hash", "misp", 70), (True, "d41d8cd98f00b204e9800998ecf8427e", "hash", "stix", 40),
        (True, "203.0.113.5", "ip", "misp", 70), (False, None, None, None, None),
        (True, "192.0.2.66", "ip", "stix", 80)]


def test_the_matched_address_says_where_it_is(tmp_path):
    config = ThreatConfig((feed(tmp_path / "tor.txt", f"{TOR_EXIT}\nbad.example\n"),))
    rows = enriched([rec(0, attributes=f'{{"src_ip":"10.0.0.1","dst_ip":"{TOR_EXIT}"}}'),
                     rec(1, attributes='{"client_ip":"8.8.8.8","domain":"x.bad.example"}'),
                     rec(2, attributes='{"domain":"bad.example"}')], threat_intel=config)
    assert [r["threat_origin"] for r in rows] == ["DE Stiftung Erneuerbare Freiheit", "US GOOGLE", "unknown location"]


def test_lists_are_read_again_when_their_file_changes(tmp_path):
    path = tmp_path / "list.txt"
    config = ThreatConfig((feed(path, "203.0.113.1\n"),), reload=0.0)
    record = [rec(0, attributes='{"client_ip":"203.0.113.2"}')]
    assert enriched(record, threat_intel=config)[0]["threat_matched"] is False
    path.write_text("203.0.113.1\n203.0.113.2\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    assert enriched(record, threat_intel=config)[0]["threat_indicator"] == "203.0.113.2"
    path.write_text("not an address /// \n")  # still readable: a domain-shaped line, the address is gone
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000_000))
    assert enriched(record, threat_intel=config)[0]["threat_matched"] is False


def test_many_indicators_match_like_a_set_without_a_loop_per_record():
    rng = np.random.default_rng(7)
    listed = rng.choice(2**32 - 2**24, 200_000, replace=False) + 2**24
    indicators = Indicators()
    for value in listed.tolist():
        indicators.add("ip", f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}", "big", 50)
    index = ThreatIndex.build(indicators)
    probes = np.concatenate([listed[:20_000], rng.integers(2**24, 2**32, 30_000)])
    texts = pa.array([f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}" for v in probes.tolist()])
    started = time.perf_counter()
    rows = index.networks.find(texts)
    elapsed = time.perf_counter() - started
    assert np.array_equal(rows >= 0, np.isin(probes, listed))
    assert elapsed < 2.0, f"matching 50k addresses against 200k indicators took {elapsed:.2f}s"


# --- users ---------------------------------------------------------------------------------------

def test_the_user_directory_joins_on_user_id_from_csv_and_yaml(tmp_path):
    csv = tmp_path / "users.csv"
    csv.write_text("user_id,name,department,privileged\nalice,Alice Liddell,Finance,yes\nbob,Bob,Eng,no\n")
    yaml = tmp_path / "users.yaml"
    yaml.write_text("users:\n  alice: {name: Alice L., department: Finance, privileged: true}\n")
    records = [rec(0, user_id="alice"), rec(1, user_id="bob"), rec(2, user_id="carol"), rec(3)]
    from_csv = [(r["user_name"], r["user_department"], r["user_privileged"])
                for r in enriched(records, users=UsersConfig(str(csv)))]
    assert from_csv == [("Alice Liddell", "Finance", True), ("Bob", "Eng", False), (None, None, None),
                        (None, None, None)]
    from_yaml = [r["user_privileged"] for r in enriched(records, users=UsersConfig(str(yaml)))]
    assert from_yaml == [True, None, None, None]


def test_privileged_users_are_held_to_a_tighter_rule(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("user_id,name,department,privileged\nroot-admin,Ops Admin,IT,yes\n")
    errors = [rec(i * 60.0, "auth", "ERROR", user_id=user) for i in range(12) for user in ("root-admin", "u-1")]
    records = dataclasses.replace(Inventory(), context=Context(users=UsersConfig(str(path)))).enrich(table(errors))
    rules = [r for r in load_rules(ANOMALY_SCHEMA_PATH).rules if r.name.startswith("suspicious")]
    fired = {(a.rule, a.key) for a in DetectorSet(rules).process("b1", records) if a.status == "firing"}
    assert fired == {("suspicious_privileged_user", "root-admin")}
    assert "privileged user" in next(r for r in rules if r.name == "suspicious_privileged_user").description


# --- configuration -------------------------------------------------------------------------------

def test_configuration_errors_name_the_key(tmp_path):
    bad_users = tmp_path / "users.csv"
    bad_users.write_text("user_id,name,privileged\nalice,Alice,maybe\n")
    cases = [({"geoip": {"database": str(tmp_path / "none.mmdb")}}, "processing.geoip.database: no such file"),
             ({"geoip": {"database": str(bad_users)}}, "processing.geoip: not a MaxMind database"),
             ({"threat_intel": {"files": [{"path": str(bad_users), "confidence": 300}]}},
              "processing.threat_intel.files.0.confidence: expected an integer from 0 to 100"),
             ({"threat_intel": {"reload": "soon"}}, "processing.threat_intel.reload: expected a duration"),
             ({"users": str(bad_users)}, f"{bad_users}:2: privileged: expected yes or no"),
             ({"threat_intel": {"feeds": []}}, "processing.threat_intel.feeds: unknown key")]
    for section, message in cases:
        with pytest.raises(ConfigError) as caught:
            ProcessingConfig.from_dict(section)
        assert message in str(caught.value), (section, str(caught.value))


def test_the_configuration_reaches_enrichment(tmp_path):
    (tmp_path / "tor.csv").write_text(f"ip\n{TOR_EXIT}\n")
    (tmp_path / "users.yaml").write_text("users: [{user_id: alice, privileged: yes}]\n")
    config = ProcessingConfig.from_dict({"threat_intel": {"files": [{"path": str(tmp_path / "tor.csv"),
                                                                     "name": "tor", "confidence": 90}],
                                                          "reload": "30s"},
                                         "users": {"path": str(tmp_path / "users.yaml")}})
    assert config.inventory.context == Context(GeoConfig(), config.threat_intel, config.users)
    assert config.inventory.services == ProcessingConfig().inventory.services  # the shipped inventory stays
    assert load_index(config.threat_intel).lists.to_pylist() == ["tor"]
    off = ProcessingConfig.from_dict({"geoip": {"enabled": False}})
    row = off.inventory.enrich(table([rec(0, attributes='{"client_ip":"8.8.8.8"}')])).to_pylist()[0]
    assert row["client_country"] is None and row["threat_matched"] is False and row["team"] == "unassigned"


# --- through the batch functions and the default rule ---------------------------------------------

def test_a_threat_match_reaches_the_lake_and_raises_its_alert_with_country_and_as(tmp_path):
    from logwarden.demo import SimClock, TrafficModel, demo_processing

    paths = DataDir.at(tmp_path).create()
    processing = demo_processing(ProcessingConfig(), tmp_path)
    clock = SimClock(speed=1.0, lead=0.0, wall=1_795_000_000.0)
    validator = RecordValidator(skew=SkewLimits(max_future=1e12, max_past=1e12))
    raw = list(TrafficModel(rate=2.0, seed=3).records(clock, clock.sim_start + 200, clock.sim_start + 320))
    rows = [validator.normalize(r, f"r{i}", "t", "demo", 0) for i, r in enumerate(raw)]
    spool = Spool(paths.spool)
    spool.write("1700000000000-demo-000001", rows)
    path = str(spool.batches()[0])
    miner = TemplateMiner()
    unmatched = prepare_batch(path, miner.snapshot())
    for message in unmatched.messages:
        miner.add(message)
    output = finalize_batch(path, str(paths.lake), miner.snapshot(), unmatched.messages,
                            inventory=processing.inventory)
    matched = [r for r in output.records.to_pylist() if r["threat_matched"]]
    assert len(matched) == 8 and {r["client_country"] for r in matched} == {"DE"}
    stored = pa.concat_tables(pq.read_table(f) for f in Lake(paths.lake).logs.rglob("*.parquet"))
    assert stored.filter(pc.field("threat_matched")).column("client_as_org").unique().to_pylist() == [
        "Stiftung Erneuerbare Freiheit"]
    rules = [r for r in load_rules(ANOMALY_SCHEMA_PATH).rules if r.name == "threat_indicator_seen"]
    alerts = [a for a in DetectorSet(rules).process(output.batch_id, output.records) if a.status == "firing"]
    assert [(a.rule, a.severity, a.key) for a in alerts] == [
        ("threat_indicator_seen", "HIGH", f"{TOR_EXIT}|demo-tor-exits|DE Stiftung Erneuerbare Freiheit")]


def test_empty_and_chunked_batches_are_enriched(tmp_path):
    config = ThreatConfig((feed(tmp_path / "tor.txt", f"{TOR_EXIT}\n"),))
    inventory = dataclasses.replace(Inventory(), context=Context(threat_intel=config))
    records = table([rec(0, attributes=f'{{"client_ip":"{TOR_EXIT}"}}'), rec(1)])
    assert inventory.enrich(records.slice(0, 0)).num_rows == 0
    chunked = pa.concat_tables([records.slice(0, 1), records.slice(1, 1)])
    assert [r["threat_matched"] for r in inventory.enrich(chunked).to_pylist()] == [True, False]
