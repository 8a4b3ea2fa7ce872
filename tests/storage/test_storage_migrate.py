"""Alembic migrations: idempotent, safe when several processes race, and in step with the models."""

from __future__ import annotations

import multiprocessing as mp

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from kubestack_ai.storage import Store
from kubestack_ai.storage.migrate import head
from kubestack_ai.storage.models import Base


def test_migrate_twice_is_a_no_op(databases) -> None:
    store = Store(databases.new_url())
    try:
        assert store.schema_revision() is None
        assert store.migrate() is True
        assert store.schema_revision() == head() == "0006"
        tables = set(inspect(store.engine).get_table_names())
        assert {"ksa_plugin_state", "ksa_result_cache", "ksa_run", "ksa_audit", "ksa_target_latest",
                "ksa_fleet_member",
                "ksa_alembic_version"} <= tables
        assert store.migrate() is False
        assert store.schema_revision() == head()
    finally:
        store.dispose()


def test_models_agree_with_the_migrations(migrated: Store) -> None:
    with migrated.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": "ksa_alembic_version",
                                                     "compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def _migrate(url: str, barrier, out) -> None:  # type: ignore[no-untyped-def]
    store = Store(url)
    barrier.wait(10)
    try:
        out.put(store.migrate())
    except Exception as e:  # reported to the parent, which fails the test with it
        out.put(repr(e))
    finally:
        store.dispose()


def test_concurrent_migrate_from_several_processes(databases) -> None:
    url = databases.new_url()
    ctx = mp.get_context("fork")
    n = 4
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_migrate, args=(url, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert sorted(results, key=str) == [False] * (n - 1) + [True], results
    store = Store(url)
    try:
        assert store.schema_revision() == head()
        assert store.migrate() is False
    finally:
        store.dispose()


def test_revisions_form_one_line() -> None:
    """One head and no branches: each new revision comes after main's head."""
    from alembic.script import ScriptDirectory

    from kubestack_ai.storage.migrate import _config

    scripts = ScriptDirectory.from_config(_config())
    assert len(scripts.get_heads()) == 1
    revs = list(scripts.walk_revisions())
    assert revs[-1].down_revision is None
    assert all(len(r._all_down_revisions) <= 1 for r in revs)
