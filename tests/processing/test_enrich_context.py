"""Security enrichment: where an address is (GeoIP), whether a record mentions a threat indicator, who
its user is; on Arrow tables, through the batch functions and the default rules."""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from logwarden.alerting.format import title
from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir
from logwarden.common.yamlconf import ConfigError
from logwarden.monitoring import DetectorSet, load_rules
from logwarden.processing.batch import finalize_batch, prepare_batch
from logwarden.processing.config import ProcessingConfig
from logwarden.processing.enrich import Context, Inventory
from logwarden.processing.templates import TemplateMiner
from logwarden.processing.addresses import network_keys
from logwarden.processing.geoip import GeoConfig, address_columns, distinct_addresses, geo_columns, routed_networks
from logwarden.processing.threatintel import Indicators, ThreatConfig, ThreatFeed, ThreatIndex, load_index
from logwarden.processing.users import UsersConfig
from logwarden.processing.watched import CACHE
from logwarden.schemas import ANOMALY_SCHEMA_PATH
from logwarden.storage import Lake
from tests.monitoring.helpers import rec, table

TOR_EXIT = "185.220.101.47"  # a Tor exit: Germany (GeoLite2), AS60729 "Stiftung Erneuerbare Freiheit" (plevin)
TOR_EXIT_AS = 60729


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
    view = [(r["client_scope"], r["client_country"], r["client_asn"], r["client_as_org"], r["destination_scope"],
             r["destination_country"], r["destination_asn"]) for r in rows]
    assert view == [("public", "US", 15169, "Google LLC", "public", "US", 15169),
                    ("private", None, None, None, "loopback", None, None),
                    ("private", None, None, None, "link-local", None, None),
                    ("public", "DE", TOR_EXIT_AS, "Stiftung Erneuerbare Freiheit", "reserved", None, None)]


def test_as_numbers_agree_with_plevins_own_lookup():
    """The AS arrays exported from plevin's file answer as plevin's reader does, address by address."""
    import plevin

    rng = np.random.default_rng(5)
    v4 = [str(ipaddress.IPv4Address(int(n))) for n in rng.integers(1 << 24, 224 << 24, 400)]
    v6 = [str(ipaddress.IPv6Address((0x2000 << 112) | int(n) << 64)) for n in rng.integers(0, 1 << 60, 200)]
    texts = [a for a in v4 + v6 if ipaddress.ip_address(a).is_global]
    hi, lo, _, _ = network_keys(pa.array(texts))
    asn, org = routed_networks().lookup(hi, lo)
    expected = [plevin.lookup(text).network for text in texts]
    assert asn.to_pylist() == [n.asn if n is not None else None for n in expected]
    assert sum(a is not None for a in asn.to_pylist()) > len(texts) / 2  # most of the space is announced
    names = [(n.operator.company if n.operator and n.operator.company else n.handle) if n and n.asn else None
             for n in expected]
    assert org.to_pylist() == names


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
    city_only = ProcessingConfig.from_dict({"geoip": {"database": str(tmp_path / "city.mmdb")}})
    rows = city_only.inventory.enrich(table([rec(0, attributes='{"client_ip":"8.8.8.8"}')])).to_pylist()
    assert (rows[0]["client_city"], rows[0]["client_asn"], rows[0]["client_as_org"]) == (None, 15169, "Google LLC")


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
    assert [r["threat_origin"] for r in rows] == [f"DE AS{TOR_EXIT_AS} Stiftung Erneuerbare Freiheit",
                                                  "US AS15169 Google LLC", "unknown location"]


def test_every_address_url_domain_and_hash_of_a_record_is_matched(tmp_path):
    listed = "203.0.113.80\n2001:db8:bad::/48\nhttps://evil.example/payload\nc2.example\n" + "cd" * 20 + "\n"
    config = ThreatConfig((feed(tmp_path / "list.txt", listed),))
    rows = enriched([
        rec(0, attributes='{"x_forwarded_for":"198.51.100.1, 203.0.113.80","client_ip":"198.51.100.1"}'),
        rec(1, message="proxy 10.0.0.1 relayed 198.51.100.7 to 203.0.113.80 port 443"),
        rec(2, message="accepted connection from [2001:db8:bad::17]:51000"),
        rec(3, attributes='{"url":"https://ok.example/","referrer":"https://evil.example/payload"}'),
        rec(4, message="fetched https://ok.example/a and https://evil.example/payload."),
        rec(5, message="lookup of www.c2.example took 3ms"),
        rec(6, attributes='{"sha1":"' + "ab" * 20 + '","parent_sha1":"' + "CD" * 20 + '"}'),
        rec(7, message="std::vector at 10:30:00 from 198.51.100.1.5 and v1.2.3.4.5, c2.example.org"),
    ], threat_intel=config)
    assert [(r["threat_indicator"], r["threat_type"]) for r in rows] == [
        ("203.0.113.80", "ip"), ("203.0.113.80", "ip"), ("2001:db8:bad::/48", "ip"),
        ("https://evil.example/payload", "url"), ("https://evil.example/payload", "url"),
        ("c2.example", "domain"), ("cd" * 20, "hash"), (None, None)]
    assert rows[1]["threat_origin"] == "reserved" and rows[2]["threat_origin"] == "reserved"  # the listed address


def test_a_record_mentioning_several_listed_values_reports_the_most_confident(tmp_path):
    low = feed(tmp_path / "low.txt", "198.51.100.1\n", "low", 20)
    high = feed(tmp_path / "high.txt", "c2.example\n", "high", 90)
    rows = enriched([rec(0, attributes='{"client_ip":"198.51.100.1","domain":"c2.example"}')],
                    threat_intel=ThreatConfig((low, high)))
    assert (rows[0]["threat_indicator"], rows[0]["threat_list"], rows[0]["threat_confidence"]) == (
        "c2.example", "high", 90)


def test_an_ipv6_address_in_the_message_is_the_client_of_a_record_naming_no_role():
    records = table([rec(0, message="Failed password for root from 2001:4860:4860::8844 port 22 ssh2"),
                     rec(1, message="from fe80::1%eth0 and then 8.8.4.4"),
                     rec(2, message="std::map<int> at 10:30:00, mac 00:1a:2b:3c:4d:5e")])
    assert address_columns(records)["client"].to_pylist() == ["2001:4860:4860::8844", "8.8.4.4", None]
    rows = enriched(records.to_pylist())
    assert [(r["client_country"], r["client_asn"]) for r in rows[:1]] == [("US", 15169)]


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


# --- assets --------------------------------------------------------------------------------------

def test_the_inventory_gives_each_host_its_owner_environment_and_criticality(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text("services: {}\nhosts:\n  db-primary: {team: dba, environment: production, criticality: critical}\n"
                    "  db-*: {team: data, environment: staging, criticality: medium}\n  web-?: {team: web}\n")
    config = ProcessingConfig.from_dict({"inventory": str(path)})
    records = table([rec(0, attributes='{"host":"db-primary"}'), rec(1, attributes='{"host":"db-replica-2"}'),
                     rec(2, attributes='{"host":"web-1"}'), rec(3, attributes='{"host":"web-10"}'), rec(4)])
    rows = config.inventory.enrich(records).to_pylist()
    assert [(r["host_team"], r["host_environment"], r["host_criticality"]) for r in rows] == [
        ("dba", "production", "critical"), ("data", "staging", "medium"), ("web", None, None),
        (None, None, None), (None, None, None)]
    shipped = ProcessingConfig().inventory.enrich(table([rec(0, attributes='{"host":"payment-service-2"}')]))
    assert shipped.column("host_criticality").to_pylist() == ["critical"]


def test_a_bad_host_entry_names_its_file_line_and_key(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text("services: {}\nhosts:\n  db-1: {team: dba}\n  db-2: {team: dba, criticality: severe}\n")
    with pytest.raises(ConfigError) as caught:
        ProcessingConfig.from_dict({"inventory": str(path)})
    assert f"{path}:4: hosts.db-2.criticality: expected one of low, medium, high, critical" in str(caught.value)
    path.write_text("services: {}\nhosts:\n  db-1: {owner: dba}\n")
    with pytest.raises(ConfigError, match=r":3: hosts.db-1: expected a mapping of criticality, environment, team"):
        ProcessingConfig.from_dict({"inventory": str(path)})


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
    matched_rows = stored.filter(pc.field("threat_matched"))
    assert matched_rows.column("client_as_org").unique().to_pylist() == ["Stiftung Erneuerbare Freiheit"]
    assert matched_rows.column("client_asn").unique().to_pylist() == [TOR_EXIT_AS]
    rules = [r for r in load_rules(ANOMALY_SCHEMA_PATH).rules if r.name == "threat_indicator_seen"]
    alerts = [a for a in DetectorSet(rules).process(output.batch_id, output.records) if a.status == "firing"]
    assert [(a.rule, a.severity, a.key) for a in alerts] == [
        ("threat_indicator_seen", "HIGH", f"{TOR_EXIT}|demo-tor-exits|DE AS{TOR_EXIT_AS} Stiftung Erneuerbare Freiheit")]
    assert title(alerts[0]) == ("[HIGH] threat_indicator_seen · t/"  # the records' tenant is "t"
                                f"{TOR_EXIT}|demo-tor-exits|DE AS{TOR_EXIT_AS} Stiftung Erneuerbare Freiheit")


def test_empty_and_chunked_batches_are_enriched(tmp_path):
    config = ThreatConfig((feed(tmp_path / "tor.txt", f"{TOR_EXIT}\n"),))
    inventory = dataclasses.replace(Inventory(), context=Context(threat_intel=config))
    records = table([rec(0, attributes=f'{{"client_ip":"{TOR_EXIT}"}}'), rec(1)])
    assert inventory.enrich(records.slice(0, 0)).num_rows == 0
    chunked = pa.concat_tables([records.slice(0, 1), records.slice(1, 1)])
    assert [r["threat_matched"] for r in inventory.enrich(chunked).to_pylist()] == [True, False]
