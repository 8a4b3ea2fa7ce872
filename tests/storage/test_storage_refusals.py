"""What the store refuses, with a clear message, instead of guessing: a database it
cannot run on (at open, not inside the write of a run), an audit record whose time
cannot be read (it is not replaced by now)."""

from __future__ import annotations

import datetime as dt

import pytest

from kubestack_ai.storage import StorageError, Store


@pytest.mark.parametrize("url", ["mssql+pymssql://ops:pw-Secret1@db/ksa", "oracle://ops@db/ksa",
                                 "firebird://ops@db/ksa"])
def test_unsupported_database_refused_when_the_store_opens(url: str) -> None:
    with pytest.raises(StorageError) as e:
        Store(url)
    msg = str(e.value)
    assert msg.startswith(f"unsupported database {url.split('+')[0].split(':')[0]!r}")
    assert msg.endswith("KubeStack AI stores in SQLite, PostgreSQL, MySQL or MariaDB")
    assert "pw-Secret1" not in msg


def test_audit_time_unparseable_is_refused_not_replaced(store: Store) -> None:
    base = {"plugin_id": "redis-diagnostics", "target": "redis:c", "action": "bgsave",
            "ok": True, "params": {}}
    for bad in ("yesterday", "2026-13-45T00:00:00", 12345):
        with pytest.raises(StorageError, match="'at' must be a datetime or an ISO 8601 timestamp"):
            store.record_action({**base, "at": bad})
    assert store.audit_log() == []
    at = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    store.record_action({**base, "at": at.isoformat()})
    store.record_action({**base, "at": None})  # no time given: now
    times = [a.at.replace(tzinfo=a.at.tzinfo or dt.UTC) for a in store.audit_log()]
    assert at in times and max(times) > at
