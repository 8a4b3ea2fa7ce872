"""Issue 25.6: ``ksa diagnose mysql`` (and kafka) against a Redis port took 4.9 s and said
``Lost connection to MySQL server during query (timed out)``. A server that does not
speak the protocol is named as such, quickly, as the Redis plugin does for foreign
servers. The machine's Redis (127.0.0.1:6379) is the foreign server: it never greets."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import port_open, require, run_ksa


@pytest.mark.parametrize(("mtype", "code", "title"), [
    ("mysql", "mysql.connection.not_mysql", "Not a MySQL server"),
    ("kafka", "kafka.connection.not_kafka", "Not a Kafka broker"),
])
def test_a_redis_port_is_not_a_mysql_server_or_a_kafka_broker(mtype: str, code: str,
                                                              title: str) -> None:
    require(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    start = time.monotonic()
    p = run_ksa("diagnose", mtype, "127.0.0.1:6379", "--no-store", "--json")
    took = time.monotonic() - start
    assert p.returncode == 2, p.stderr
    [f] = json.loads(p.stdout)["findings"]
    assert (f["code"], f["title"].split(":")[0]) == (code, title), f
    assert "Lost connection" not in f["evidence"]["error"]
    assert took < 4.0, took  # the process start included; the wait itself is 1.5 s
