"""Our INFO parser gives redis-py's result: on real servers' replies (master with keys,
command and error stats, a replica, sentinels) and on lines no test server prints."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import redis
from redis._parsers.helpers import parse_info as redis_py_parse_info

from kubestack_ai.plugins.redis.connection import ClientCache
from kubestack_ai.plugins.redis.infoparse import Info, dict_fields, parse_info

from .util import Servers, start_sentinel_set


def raw_info(c: redis.Redis, section: str = "all") -> str:
    c.set_response_callback("INFO", lambda r, **_kw: r)
    text = c.execute_command("INFO", section)
    assert isinstance(text, str) and "\r\n" in text
    return text


def typed(x: Any) -> Any:
    """``x`` with the type of every value beside it (True == 1, 1 == 1.0 in Python)."""
    if isinstance(x, dict):
        return [(k, typed(v)) for k, v in x.items()]
    if isinstance(x, list):
        return [typed(v) for v in x]
    return (type(x).__name__, x)


def assert_same(text: str) -> Info:
    ours, theirs = parse_info(text), redis_py_parse_info(text)
    assert typed(ours) == typed(theirs)
    assert ours.fields == [(k, v) for k, v in theirs.items() if isinstance(v, dict)]
    return ours


def test_real_replies_parse_as_redis_py_parses_them(servers: Servers) -> None:
    master, replica, sentinels = start_sentinel_set(servers)
    with master.client() as c:
        c.mset({f"k{i}": i for i in range(50)})
        c.expire("k1", 100)
        with pytest.raises(redis.ResponseError):
            c.execute_command("NO-SUCH-COMMAND")  # errorstat_ERR
        with pytest.raises(redis.ResponseError):
            c.execute_command("LPUSH", "k2", "x")  # WRONGTYPE
        with master.client(db=3) as other:
            other.set("other-db", "x")
        info = assert_same(raw_info(c))
        assert {"db0", "db3", "cmdstat_mset", "errorstat_ERR", "errorstat_WRONGTYPE",
                "slave0"} <= {k for k, _ in info.fields}
        assert info["db0"]["keys"] == 50 and info["role"] == "master"
        assert isinstance(info["mem_fragmentation_ratio"], float)
        for section in ("server", "commandstats", "keyspace", "replication"):
            assert_same(raw_info(c, section))
    with replica.client() as c:
        info = assert_same(raw_info(c))
        assert info["role"] == "slave" and info["master_port"] == master.port
    with sentinels[0].client() as c:
        info = assert_same(raw_info(c))
        assert info["master0"]["name"] == "mymaster" and info["master0"]["sentinels"] == 3


@pytest.mark.parametrize("line", [
    "plain:12", "negative:-1", "float:1.25", "ratio:inf", "dotted_inf:inf.", "nan:nan",
    "version:7.0.15", "human:1.50M", "percent:100.12%", "empty:", "word:master",
    "spaces: 12 ", "underscored:1_000", "unicode_digits:\u00b2\u00b3", "hexish:0x1f",
    "exp:1e5", "exp_dot:1.5e3", "exp_neg:-1.5E-3", "point_end:1.", "point_start:.5",
    "signed:+3", "signed_float:-1.5", "float_spaces: 1.5 ", "float_underscore:1_0.5",
    "percent_int:12%", "ip:127.0.0.1", "hex_id:ae4d7c971a948f0", "hex_digits_end:ffe0",
    "dots_only:..", "point:.", "minus:-", "paren:(1)", "word_dot_digit:v1.2",
    "infinity:Infinity", "nan_dot:nan.", "list:a,b,,3", "pairs:calls=3,usec=4,usec_per_call=1.33",
    "pairs_odd:flag,x=,y=a=b,z=1.5,neg=-2", "colon_value:addr=127.0.0.1:6379,state=ok",
    "cmdstat_host:calls=1,usec=2", "module:name=search,ver=20604,api=1",
    "module:name=json,ver=20600", "no colon at all", "#comment:1", "",
])
def test_odd_lines_parse_as_redis_py_parses_them(line: str) -> None:
    assert_same(f"# Section\r\n{line}\r\nlast:1\r\n")


def test_bytes_and_plain_dicts() -> None:
    assert parse_info(b"a:1\r\nb:x=1\r\n") == {"a": 1, "b": {"x": 1}}
    assert dict_fields({"a": 1, "db0": {"keys": 2}}) == [("db0", {"keys": 2})]
    info = parse_info("a:1\r\ndb0:keys=2\r\n")
    copied: Any = pickle.loads(pickle.dumps(info))
    assert type(copied) is dict and copied == info  # stored and sent as a plain dict


def test_the_plugins_clients_use_it(servers: Servers) -> None:
    srv = servers.start()
    cache = ClientCache()
    client = cache.get("k", "127.0.0.1", srv.port, {"decode_responses": True})
    try:
        info = client.info("all")
        assert isinstance(info, Info) and info["tcp_port"] == srv.port
        pipe = client.pipeline(transaction=False)
        pipe.info("all")
        assert isinstance(pipe.execute()[0], Info)
    finally:
        cache.close_all()
