"""Every address, URL, dotted name and hash a record mentions, found by shape over whole columns."""
from __future__ import annotations

import pyarrow as pa

from logwarden.processing.mentions import (
    MAX_PER_RECORD, Texts, domain_mentions, hash_mentions, ip_mentions, url_mentions,
)
from tests.monitoring.helpers import rec, table


def pairs(found) -> list[tuple[int, str]]:
    return sorted(zip(found.rows.tolist(), found.values.to_pylist()))


def test_every_address_of_attributes_and_message_with_the_key_it_opens():
    texts = Texts(table([
        rec(0, attributes='{"x_forwarded_for":"198.51.100.1, 203.0.113.80","client_ip":"198.51.100.1"}'),
        rec(1, message="proxy 10.0.0.1 relayed [2001:db8::7]:443 to 203.0.113.80."),
        rec(2, message="std::vector at 10:30:00, mac 00:1a:2b:3c:4d:5e, v1.2.3.4.5, 1.2.3, ::, 1234.5.6.7"),
        rec(3, attributes='{"peer":"fe80::1%eth0","full":"2001:0db8:0000:0000:0000:ff00:0042:8329"}'),
    ]))
    found = ip_mentions(texts)
    assert pairs(found) == [(0, "198.51.100.1"), (0, "198.51.100.1"), (0, "203.0.113.80"),
                            (1, "10.0.0.1"), (1, "2001:db8::7"), (1, "203.0.113.80"),
                            (3, "2001:0db8:0000:0000:0000:ff00:0042:8329"), (3, "fe80::1")]
    keyed = sorted(zip(found.rows.tolist(), found.values.to_pylist(), found.keys.to_pylist()))
    assert keyed[:3] == [(0, "198.51.100.1", "client_ip"), (0, "198.51.100.1", "x_forwarded_for"),
                         (0, "203.0.113.80", None)]
    assert ip_mentions(texts, rows=pa.array([1]).to_numpy()).rows.tolist() == [1, 1, 1]


def test_urls_names_and_hashes_anywhere_in_the_record():
    texts = Texts(table([
        rec(0, attributes='{"url":"https://ok.example/","referrer":"https://evil.example/p?q=1"}',
            message="then http://third.example/x."),
        rec(1, message="resolving WWW.Evil.Example. and mail to a@c2.example, file main.py"),
        rec(2, attributes='{"sha256":"' + "AB" * 32 + '"}', message="md5 " + "0f" * 16 + " and " + "1" * 50),
    ]))
    assert pairs(url_mentions(texts)) == [(0, "http://third.example/x"), (0, "https://evil.example/p?q=1"),
                                          (0, "https://ok.example/")]
    assert [v for r, v in pairs(domain_mentions(texts)) if r == 1] == ["WWW.Evil.Example", "c2.example", "main.py"]
    assert pairs(hash_mentions(texts)) == [(2, "0f" * 16), (2, "ab" * 32)]


def test_a_record_gives_at_most_a_bounded_number_of_values():
    many = " ".join(f"10.0.{n // 256}.{n % 256}" for n in range(MAX_PER_RECORD + 10))
    found = ip_mentions(Texts(table([rec(0, message=many), rec(1, message="none here")])))
    assert len(found) == MAX_PER_RECORD and set(found.rows.tolist()) == {0}
