"""Side by side, per MySQL scenario of issue 12: what mysqltuner, pt-variable-advisor and
pt-duplicate-key-checker flag, and what mysql-diagnostics flags.

    .venv/bin/python bench/peers_mysql.py            # a Markdown table on stdout

Starts three MariaDB instances of its own (temporary directories, free loopback ports;
stopped at the end) and seeds each scenario's fault or its healthy look-alike:

- weak: binary log on with sync_binlog=0, innodb_flush_log_at_trx_commit=2,
  innodb_doublewrite=OFF, binary logs never expire, skip_name_resolve=OFF,
  max_connections=10, a 6 MB buffer pool flushed slowly;
- durable: the same with every durability setting right (sync_binlog=1, flush 1,
  binlog_expire_logs_seconds=604800), skip_name_resolve=ON;
- ps: performance_schema=ON (statement digests).

A cell lists the tool's lines that concern the scenario (its other output is left out);
"—" means it said nothing about it. mysqltuner 1.9.9 (Debian) dies with "Illegal division
by zero" on MariaDB 10.11 (innodb_buffer_pool_chunk_size is 0 there, and
innodb_buffer_pool_instances is gone): the script runs a copy patched to divide by 1
instead, and with --skippassword (its 620-password login loop takes half a minute)
except in the account scenarios, where that flag would skip its whole security section.

Our column is ``PluginManager.diagnose``, as ``ksa diagnose`` runs it; where a scenario
needs an earlier run (counters judged as rates), the earlier run's metrics are passed as
history, as ``ksa diagnose`` does from its local store.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymysql  # noqa: E402

from kubestack_ai.plugins import (  # noqa: E402
    DiagnoseOptions,
    MiddlewareTarget,
    PluginManager,
    Snapshot,
)
from kubestack_ai.plugins.models import utcnow  # noqa: E402
from tests.mysql.mysql_helpers import (  # noqa: E402
    DURABLE_ARGS,
    INSTALL_DB,
    WEAK_ARGS,
    Instance,
    wait_for_free_pages,
)

MYSQLTUNER = shutil.which("mysqltuner") or "/usr/bin/mysqltuner"
DUMP = shutil.which("mariadb-dump") or shutil.which("mysqldump") or "mysqldump"


@dataclass
class Scenario:
    name: str
    on: str  # instance
    setup: list[str] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)
    act: Callable[[Instance], Any] | None = None
    peers: dict[str, str] = field(default_factory=dict)  # tool -> regex of relevant lines
    ours: str = ""  # regex of our relevant finding codes
    thresholds: dict[str, float] = field(default_factory=dict)
    with_history: bool = False
    note: str = ""
    security: bool = False  # mysqltuner's security section (its slow password loop) runs


def patched_mysqltuner(tmp: Path) -> Path:
    text = Path(MYSQLTUNER).read_text()
    for var in ("innodb_buffer_pool_chunk_size", "innodb_buffer_pool_instances"):
        text = text.replace(f"int( $myvar{{'{var}'}} )", f"(int( $myvar{{'{var}'}} ) || 1)")
    out = tmp / "mysqltuner-patched.pl"
    out.write_text(text)
    return out


def run_peers(inst: Instance, tuner: Path, security: bool) -> dict[str, list[str]]:
    pw = inst.password
    dsn = f"h=127.0.0.1,P={inst.port},u=root" + (f",p={pw}" if pw else "")
    out: dict[str, list[str]] = {}
    mt = subprocess.run(["perl", str(tuner), "--host", "127.0.0.1", "--port", str(inst.port),
                         "--user", "root", "--pass", pw, "--nocolor", "--noask",
                         "--forcemem", "2048", "--forceswap", "0", "--tbstat", "--idxstat",
                         *([] if security else ["--skippassword"])],
                        capture_output=True, text=True, timeout=180)
    out["mysqltuner"] = [ln[5:].strip() for ln in mt.stdout.splitlines()
                         if ln.startswith("[!!]")] + [ln for ln in mt.stderr.splitlines()
                                                      if "division by zero" in ln]
    va = subprocess.run(["pt-variable-advisor", dsn], capture_output=True, text=True,
                        timeout=60)
    out["pt-variable-advisor"] = [ln[2:] for ln in va.stdout.splitlines()
                                  if re.match(r"# (WARN|NOTE|CRIT)", ln)]
    dk = subprocess.run(["pt-duplicate-key-checker", dsn], capture_output=True, text=True,
                        timeout=60)
    out["pt-duplicate-key-checker"] = [ln for ln in dk.stdout.splitlines()
                                       if ln.startswith("ALTER TABLE")]
    return out


def target(inst: Instance, thresholds: dict[str, float]) -> MiddlewareTarget:
    import os

    auth: dict[str, str] = {"username": "root"}
    if inst.password:
        os.environ["KSA_PEERS_ROOT_PW"] = inst.password
        auth["password"] = "env:KSA_PEERS_ROOT_PW"
    return MiddlewareTarget.model_validate({"type": "mysql", "endpoints": [inst.endpoint],
                                            "auth": auth, "thresholds": thresholds})


def ours(manager: PluginManager, inst: Instance, sc: Scenario,
         history: tuple[Snapshot, ...]) -> list[str]:
    r = manager.diagnose(target(inst, sc.thresholds), DiagnoseOptions(history=history),
                         timeout=60)
    return [f"{f.severity.name} {f.code.removeprefix('mysql.')}: {f.title}"
            for f in r.findings if re.search(sc.ours, f.code)]


# -- the scenarios' actions ----------------------------------------------------------------

def refuse(inst: Instance) -> None:
    held = []
    for _ in range(14):
        try:
            held.append(inst.connect("filler", "Fill-pw-6"))
        except pymysql.err.OperationalError:
            pass
    for c in held:
        c.close()


def ratios(inst: Instance) -> None:
    """120 logins, 10 of them with a wrong password; 120 GROUP BYs with a 1 kB
    tmp_table_size (on disk); 30 joins without an index (issue 24 item 6's counters)."""
    for i in range(120):
        try:
            inst.connect("root", "wrong-password" if i % 12 == 0 else None).close()
        except pymysql.err.OperationalError:
            pass
    with inst.connect() as c, c.cursor() as cur:
        cur.execute("SET SESSION tmp_table_size=1024, max_heap_table_size=16384")
        for _ in range(120):
            cur.execute("SELECT v, COUNT(*) FROM rt.a GROUP BY v ORDER BY COUNT(*) DESC")
        for _ in range(30):
            cur.execute("SELECT COUNT(*) FROM rt.a JOIN rt.b USING (k)")


RATIOS_SETUP = ["CREATE DATABASE IF NOT EXISTS rt",
                "CREATE TABLE IF NOT EXISTS rt.a (id INT PRIMARY KEY, k INT, v VARCHAR(64))",
                "CREATE TABLE IF NOT EXISTS rt.b (id INT PRIMARY KEY, k INT)",
                "REPLACE INTO rt.a SELECT seq, seq % 50, CONCAT('v-', seq) FROM rt.seq_1_to_400",
                "REPLACE INTO rt.b SELECT id, k FROM rt.a"]
RATIOS_OURS = r"aborted_connects|thread_cache|tmp_tables_on_disk|joins_without"
RATIOS_MT = r"Aborted connections|Temporary tables created on disk|Joins performed|thread cache"


def dumps(inst: Instance) -> None:
    for _ in range(12):
        subprocess.run([DUMP, "-h127.0.0.1", f"-P{inst.port}", "-uroot", "oneoff"],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)


def blocking(inst: Instance) -> Callable[[], None]:
    holder, waiter = inst.connect(autocommit=False), inst.connect()
    holder.cursor().execute("UPDATE blk.t SET v = 1 WHERE id = 1")
    waiter.cursor().execute("SET SESSION innodb_lock_wait_timeout = 50")

    def wait() -> None:
        try:
            waiter.cursor().execute("UPDATE blk.t SET v = 2 WHERE id = 1")
        except pymysql.err.MySQLError:
            pass

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(3)

    def release() -> None:
        holder.rollback()
        holder.close()
        t.join(10)
        waiter.close()
    return release


SCHEMA = [
    "CREATE DATABASE ix",
    "CREATE TABLE ix.dup (id INT PRIMARY KEY, a INT, b INT, KEY a (a), KEY a2 (a), "
    "KEY ab (a, b))",
    "CREATE TABLE ix.pkfirst (id INT PRIMARY KEY, b INT, KEY id_b (id, b))",
]
SCHEMA_OK = [
    "CREATE DATABASE ixok",
    "CREATE TABLE ixok.uniq (id INT PRIMARY KEY, a INT, b INT, UNIQUE KEY u (a), "
    "KEY ab (a, b), KEY ba (b, a))",
    "CREATE TABLE ixok.natural (code INT NOT NULL, UNIQUE KEY code (code))",
]
ACCOUNTS = ["CREATE USER ''@'%'", "CREATE USER 'report'@'%'",
            "GRANT SELECT, PROCESS ON *.* TO 'report'@'%'",
            "CREATE USER 'root'@'10.0.0.%' IDENTIFIED BY 'Root-remote-1'"]
ACCOUNTS_DROP = ["DROP USER ''@'%'", "DROP USER 'report'@'%'", "DROP USER 'root'@'10.0.0.%'"]
LOCK_DOWN = ["ALTER USER 'root'@'localhost' IDENTIFIED BY 'Peers-root-8'",
             "ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY 'Peers-root-8'",
             "ALTER USER 'root'@'::1' IDENTIFIED BY 'Peers-root-8'",
             "CREATE USER 'app'@'%' IDENTIFIED BY 'App-pw-3'",
             "CREATE DATABASE app", "GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO 'app'@'%'",
             "CREATE USER 'retired'@'%' ACCOUNT LOCK"]

MT_ACCOUNTS = r"anonymous|password|root|host|user"
DUR_VA = r"sync_binlog|flush_log_at_trx_commit|doublewrite|expire_logs"
DUR_MT = r"sync_binlog|flush_log|doublewrite|binlog|expire"

SCENARIOS = [
    Scenario("24.6 logins refused in the first seconds of a server's life", "fresh",
             ["CREATE USER 'filler'@'localhost' IDENTIFIED BY 'Fill-pw-6'"], act=refuse,
             peers={"mysqltuner": r"connection|Aborted",
                    "pt-variable-advisor": r"max_connections"},
             ours=r"connection\.(refused|usage|max_used)",
             note="ours: ksa diagnose with no history"),
    Scenario("1. accounts: ''@'%', 'report'@'%' without password holding SELECT, PROCESS "
             "on *.*, 'root'@'10.0.0.%'", "durable", ACCOUNTS, ACCOUNTS_DROP,
             peers={"mysqltuner": MT_ACCOUNTS}, ours=r"\.security\.(?!skip)", security=True),
    Scenario("2. durability: binlog on with sync_binlog=0, flush_log_at_trx_commit=2, "
             "doublewrite OFF, binlogs never expire", "weak",
             peers={"mysqltuner": DUR_MT, "pt-variable-advisor": DUR_VA}, ours=r"durability"),
    Scenario("2'. look-alike: durable settings (sync_binlog=1, flush 1, doublewrite ON, "
             "7-day expiry)", "durable",
             peers={"mysqltuner": DUR_MT, "pt-variable-advisor": DUR_VA}, ours=r"durability"),
    Scenario("3. logins refused at max_connections=10 (MariaDB: "
             "Connection_errors_max_connections stays 0)", "weak",
             ["CREATE USER 'filler'@'localhost' IDENTIFIED BY 'Fill-pw-6'"],
             ["DROP USER 'filler'@'localhost'"], act=refuse,
             peers={"mysqltuner": r"connection|Aborted",
                    "pt-variable-advisor": r"max_connections"},
             ours=r"connection\.(refused|usage|max_used)", with_history=True,
             note="ours: with the previous run as history"),
    Scenario("4. duplicate index, left prefix, index starting with the primary key",
             "durable", SCHEMA, ["DROP DATABASE ix"],
             peers={"mysqltuner": r"redundant|duplicate|ix\.", "pt-duplicate-key-checker": r"`ix`"},
             ours=r"redundant_indexes"),
    Scenario("4'. look-alike: UNIQUE prefix, other column order, UNIQUE NOT NULL key",
             "durable", SCHEMA_OK, ["DROP DATABASE ixok"],
             peers={"mysqltuner": r"redundant|duplicate|ixok", "pt-duplicate-key-checker": r"`ixok`"},
             ours=r"\.schema\."),
    Scenario("5. table without primary key (binlog on) and MyISAM / Aria tables", "weak",
             ["CREATE DATABASE tb", "CREATE TABLE tb.log (at DATETIME, msg TEXT)",
              "CREATE TABLE tb.legacy (id INT PRIMARY KEY) ENGINE=MyISAM",
              "CREATE TABLE tb.cache (id INT PRIMARY KEY) ENGINE=Aria"], ["DROP DATABASE tb"],
             peers={"mysqltuner": r"tb\.|primary key|MyISAM|engine"}, ours=r"\.schema\."),
    Scenario("6. skip_name_resolve=OFF", "weak",
             peers={"mysqltuner": r"name resolution|skip-name-resolve"},
             ours=r"skip_name_resolve"),
    Scenario("6'. look-alike: skip_name_resolve=ON", "durable",
             peers={"mysqltuner": r"name resolution|skip-name-resolve"},
             ours=r"skip_name_resolve"),
    Scenario("11. one-offs: a nightly mysqldump (12 nights) and one INSERT ... SELECT of "
             "20,000 rows", "ps",
             ["CREATE DATABASE oneoff", "CREATE TABLE oneoff.src (id INT, v INT)",
              "CREATE TABLE oneoff.dst (id INT, v INT)",
              "INSERT INTO oneoff.src SELECT seq, seq % 50 FROM oneoff.seq_1_to_20000",
              "INSERT INTO oneoff.dst SELECT * FROM oneoff.src WHERE v >= 0"],
             ["DROP DATABASE oneoff"], act=dumps,
             peers={"mysqltuner": r"scan|Joins|oneoff"},
             ours=r"full_table_scans|slow_statements|rows_examined"),
    Scenario("11'. the workload: the same unindexed scan 15 times", "ps",
             ["CREATE DATABASE hot", "CREATE TABLE hot.events (id INT, kind INT)",
              "INSERT INTO hot.events SELECT seq, seq % 100 FROM hot.seq_1_to_8000",
              *["SELECT COUNT(*) FROM hot.events WHERE kind = 3"] * 15],
             ["DROP DATABASE hot"], peers={"mysqltuner": r"scan|Joins|hot"},
             ours=r"full_table_scans"),
    Scenario("12. a 13 MB table rewritten once (its undo in ibdata1), 32 MB buffer pool",
             "durable",
             ["CREATE DATABASE bp", "CREATE TABLE bp.t (id INT PRIMARY KEY, pad VARCHAR(1000))",
              "INSERT INTO bp.t SELECT seq, REPEAT('x', 1000) FROM bp.seq_1_to_12000",
              "UPDATE bp.t SET pad = REPEAT('y', 1000)", "ANALYZE TABLE bp.t"],
             peers={"mysqltuner": r"buffer pool|innodb_buffer_pool_size"},
             ours=r"buffer_pool_small"),
    Scenario("12'. the same table grown to 45 MB against the 32 MB pool", "durable",
             ["INSERT INTO bp.t SELECT seq, REPEAT('z', 1000) FROM bp.seq_12001_to_45000",
              "ANALYZE TABLE bp.t"], ["DROP DATABASE bp"],
             peers={"mysqltuner": r"buffer pool|innodb_buffer_pool_size"},
             ours=r"buffer_pool_small"),
    Scenario("13. queries wait for free buffer pool pages (6 MB pool, slow flushing)", "weak",
             act=wait_for_free_pages, peers={"mysqltuner": r"wait|free"}, ours=r"wait_free",
             with_history=True, note="ours: with the previous run as history"),
    Scenario("13'. look-alike: the same lifetime count, nothing since (ksa diagnose with no "
             "history: two readings 1 s apart)", "weak", cleanup=["DROP DATABASE wf"],
             peers={"mysqltuner": r"wait|free"}, ours=r"wait_free",
             thresholds={"rate_window_seconds": 30},
             note="ours: rate_window_seconds=30 (default 900): a server up for longer, whose "
                  "start is not the window"),
    Scenario("17. 20 joins without an index on a server up for minutes", "ps",
             ["CREATE DATABASE jn", "CREATE TABLE jn.a (x INT)", "CREATE TABLE jn.b (x INT)",
              "INSERT INTO jn.a VALUES (1), (2)", "INSERT INTO jn.b VALUES (1), (2)",
              *["SELECT COUNT(*) FROM jn.a JOIN jn.b ON jn.a.x = jn.b.x"] * 20],
             ["DROP DATABASE jn"], peers={"mysqltuner": r"Joins"},
             ours=r"joins_without_indexes"),
    Scenario("24.6b failed logins 8 %, tmp tables on disk, 30 joins without an index, "
             "between two runs", "ps", RATIOS_SETUP, act=ratios,
             peers={"mysqltuner": RATIOS_MT}, ours=RATIOS_OURS, with_history=True,
             thresholds={"rate_window_seconds": 600},
             note="ours: with the previous run as history"),
    Scenario("24.6b' the same lifetime ratios, no history, on a server older than the window",
             "ps", act=ratios, cleanup=["DROP DATABASE rt"],
             peers={"mysqltuner": RATIOS_MT}, ours=RATIOS_OURS,
             thresholds={"rate_window_seconds": 30},
             note="ours: rate_window_seconds=30 (default 900): ksa diagnose with no history"),
    Scenario("18. an idle transaction blocking a writer for 3 s", "ps",
             ["CREATE DATABASE blk", "CREATE TABLE blk.t (id INT PRIMARY KEY, v INT)",
              "INSERT INTO blk.t VALUES (1, 0)"], ["DROP DATABASE blk"], act=blocking,
             peers={"mysqltuner": r"transaction|lock"},
             ours=r"long_transactions|lock_waits", thresholds={"blocking_trx_seconds": 2},
             note="ours: blocking_trx_seconds=2 (default 30) to keep the run short"),
    Scenario("1'. look-alike: passwords everywhere, root local only, 'app'@'%' with schema "
             "privileges only, a locked account", "durable", LOCK_DOWN,
             peers={"mysqltuner": MT_ACCOUNTS}, ours=r"\.security\.", security=True),
]


def cell(lines: list[str]) -> str:
    if not lines:
        return "—"
    short = [(ln if len(ln) <= 110 else ln[:107] + "...").replace("|", "\\|") for ln in lines]
    return "<br>".join(short[:6]) + (f"<br>(+{len(lines) - 6} more)" if len(lines) > 6 else "")


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ksa-peers-"))
    tuner = patched_mysqltuner(tmp)
    template = tmp / "template"
    subprocess.run([str(INSTALL_DB), "--no-defaults", f"--datadir={template}", "--user=root",
                    "--auth-root-authentication-method=normal", "--skip-test-db",
                    "--innodb-log-file-size=8M"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120)
    insts: dict[str, Instance] = {}
    manager = PluginManager()
    try:
        insts["weak"] = Instance("weak", tmp, template, WEAK_ARGS)
        insts["durable"] = Instance("durable", tmp, template, DURABLE_ARGS)
        insts["ps"] = Instance("ps", tmp, template, ["--performance-schema=ON"])
        # issue 24 item 6: a server seconds old when its first scenario runs
        insts["fresh"] = Instance("fresh", tmp, template, ["--max-connections=10",
                                                          "--skip-name-resolve=OFF"])
        for i in insts.values():
            i.wait()
        print("| scenario | mysqltuner 1.9.9 (patched) | pt-variable-advisor 3.2.1 | "
              "pt-duplicate-key-checker 3.2.1 | mysql-diagnostics |")
        print("|---|---|---|---|---|")
        for sc in SCENARIOS:
            inst = insts[sc.on]
            history: tuple[Snapshot, ...] = ()
            if sc.with_history:
                before = manager.diagnose(target(inst, sc.thresholds), DiagnoseOptions(),
                                          timeout=60)
                history = (Snapshot(at=utcnow(), metrics=before.metrics),)
            inst.sql(*sc.setup)
            release = sc.act(inst) if sc.act else None
            if sc is SCENARIOS[-1]:
                inst.password = "Peers-root-8"
            try:
                got = run_peers(inst, tuner, sc.security)
                mine = ours(manager, inst, sc, history)
            finally:
                if callable(release):
                    release()
                if sc.cleanup:
                    inst.sql(*sc.cleanup)
            cells = [cell([ln for ln in got[tool] if re.search(sc.peers[tool], ln, re.I)])
                     if tool in sc.peers else "n/a"
                     for tool in ("mysqltuner", "pt-variable-advisor", "pt-duplicate-key-checker")]
            name = sc.name + (f" ({sc.note})" if sc.note else "")
            print(f"| {name} | {' | '.join(cells)} | {cell(mine)} |", flush=True)
    finally:
        manager.stop_all()
        for i in insts.values():
            i.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
