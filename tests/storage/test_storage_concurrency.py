"""Several worker processes writing at once (Celery prefork children share one database).

The children are forked with the parent's Store, as Celery's prefork pool does: each
must notice the pid change and open its own connections.
"""

from __future__ import annotations

import multiprocessing as mp
import os

from kubestack_ai.storage import Store

N_PROCS = 4
N_RUNS = 25
TK, PID = "redis:shared", "redis-diagnostics"


def _writer(store: Store, inherited_engine_id: int, k: int, make_result, barrier,  # type: ignore[no-untyped-def]
            out) -> None:
    try:
        assert id(store.engine) != inherited_engine_id, "child reused the parent's engine"
        barrier.wait(10)
        won = 0
        for i in range(N_RUNS):
            r = make_result(metrics={"proc": k, "i": i})
            assert store.record_run(f"p{k}-{i}", TK, PID, (), r, ttl=60) is True
            # every process records the same run ids too: exactly one must win each
            won += store.record_run(f"dup-{i}", TK, PID, ("memory",), r, ttl=60)
            store.request_reload(PID)
            store.record_action({"plugin_id": PID, "target": TK, "action": "ping",
                                 "params": {"proc": k}, "ok": True, "error": None,
                                 "at": None, "result": None})
            assert store.cached_result(TK, PID, ()) is not None
        out.put(("ok", k, won, os.getpid()))
    except BaseException as e:  # reported to the parent, which fails the test with it
        out.put(("error", k, repr(e), os.getpid()))
    finally:
        store.dispose()


def test_concurrent_writers_from_several_processes(store: Store, make_result) -> None:
    store.set_plugin_state(PID, version="1.0.0")  # the parent's engine now holds a connection
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(N_PROCS), ctx.Queue()
    procs = [ctx.Process(target=_writer,
                         args=(store, id(store.engine), k, make_result, barrier, out))
             for k in range(N_PROCS)]
    for p in procs:
        p.start()
    reports = [out.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    errors = [r for r in reports if r[0] != "ok"]
    assert not errors, errors
    assert len({r[3] for r in reports} | {os.getpid()}) == N_PROCS + 1
    assert sum(r[2] for r in reports) == N_RUNS  # each dup-i recorded exactly once

    # the parent's own pooled connection still works after the children came and went
    history = store.history(TK, limit=1000)
    assert len(history) == N_PROCS * N_RUNS + N_RUNS
    assert len({r.run_id for r in history}) == len(history)
    assert store.get_plugin_state(PID).generation == N_PROCS * N_RUNS  # type: ignore[union-attr]
    assert len(store.audit_log(limit=1000)) == N_PROCS * N_RUNS
    assert store.cached_result(TK, PID, ()) is not None
    assert store.cached_result(TK, PID, ("memory",)) is not None


def test_dispose_then_reuse(store: Store, make_result) -> None:
    store.record_run("r1", TK, PID, (), make_result(), ttl=None)
    store.dispose()
    store.dispose()  # twice is fine
    assert [r.run_id for r in store.history(TK)] == ["r1"]


def test_threads_share_one_store(store: Store, make_result) -> None:
    import threading

    errors: list[str] = []

    def work(k: int) -> None:
        try:
            for i in range(20):
                store.record_run(f"t{k}-{i}", TK, PID, (), make_result(), ttl=60)
                store.cached_result(TK, PID, ())
                store.request_reload(PID)
        except Exception as e:  # collected: the assertion below shows them
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(store.history(TK, limit=1000)) == 80
    assert store.get_plugin_state(PID).generation == 80  # type: ignore[union-attr]
