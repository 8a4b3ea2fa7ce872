"""Version-dependent choices and the InnoDB status parser.

No MySQL server runs on this machine (only MariaDB), so MySQL 8's statements and its
INNODB STATUS format are checked here on the text the server prints.
"""

from __future__ import annotations

from kubestack_ai.plugins.mysql import innodb_status
from kubestack_ai.plugins.mysql.checks.statements import percentiles_from_cumulative
from kubestack_ai.plugins.mysql.server import Server, normalise_replica

MYSQL8_STATUS = """
=====================================
2024-05-02 10:11:12 140234 INNODB MONITOR OUTPUT
=====================================
------------------------
LATEST DETECTED DEADLOCK
------------------------
2024-05-02 10:01:00 140233
*** (1) TRANSACTION:
TRANSACTION 5123, ACTIVE 3 sec starting index read
mysql tables in use 1, locked 1
LOCK WAIT 3 lock struct(s), heap size 1128, 2 row lock(s)
MySQL thread id 11, OS thread handle 140233, query id 95 10.0.0.5 app updating
UPDATE orders
   SET state = 'paid' WHERE id = 7

*** (1) HOLDS THE LOCK(S):
@REC `shop`.`orders` trx id 5123 lock_mode X locks rec but not gap
*** (1) WAITING FOR THIS LOCK TO BE GRANTED:
@REC `shop`.`stock` trx id 5123 lock_mode X locks rec but not gap waiting

*** (2) TRANSACTION:
TRANSACTION 5124, ACTIVE 2 sec starting index read
MySQL thread id 12, OS thread handle 140234, query id 96 10.0.0.6 app updating
UPDATE stock SET n = n - 1 WHERE sku = 'a'
*** (2) HOLDS THE LOCK(S):
@REC `shop`.`stock` trx id 5124 lock_mode X locks rec but not gap
*** WE ROLL BACK TRANSACTION (2)
------------
TRANSACTIONS
------------
Trx id counter 5130
History list length 4242
""".replace("@REC", "RECORD LOCKS space id 2 page no 4 n bits 72 index PRIMARY of table")


def test_mysql8_deadlock_section() -> None:
    dl = innodb_status.latest_deadlock(MYSQL8_STATUS)
    assert dl is not None
    assert dl["at"] == "2024-05-02 10:01:00"
    assert dl["victim"] == 2
    one, two = dl["transactions"]
    assert one["statement"] == "UPDATE orders\n   SET state = 'paid' WHERE id = 7"
    assert (one["thread_id"], one["host"], one["user"]) == (11, "10.0.0.5", "app")
    assert one["tables"] == ["`shop`.`orders`", "`shop`.`stock`"]
    assert two["statement"] == "UPDATE stock SET n = n - 1 WHERE sku = 'a'"
    assert two["active_seconds"] == 2
    assert innodb_status.history_list_length(MYSQL8_STATUS) == 4242


def test_no_deadlock_section() -> None:
    assert innodb_status.latest_deadlock("----\nTRANSACTIONS\n----\nHistory list length 0\n") is None


def test_version_detection_picks_statements() -> None:
    my8 = Server.detect("8.0.36", "MySQL Community Server - GPL", "mon@%", 5)
    assert (my8.flavor, my8.version) == ("mysql", (8, 0, 36))
    assert my8.replica_status_sql == "SHOW REPLICA STATUS"
    assert my8.replication_privilege == "REPLICATION CLIENT"
    assert my8.has_statement_histogram and my8.has_digest_quantiles
    assert "performance_schema.data_lock_waits" in my8.lock_waits_sql
    assert my8.grant("PROCESS") == "GRANT PROCESS ON *.* TO 'mon'@'%';"
    my57 = Server.detect("5.7.44-log", "MySQL Community Server (GPL)", "root@localhost", 1)
    assert my57.replica_status_sql == "SHOW SLAVE STATUS"
    assert not my57.has_statement_histogram
    assert "INNODB_LOCK_WAITS" in my57.lock_waits_sql
    my8_early = Server.detect("8.0.21", "", "a@b", 1)
    assert my8_early.replica_status_sql == "SHOW SLAVE STATUS"
    maria = Server.detect("10.11.6-MariaDB-0+deb12u1", "Debian 12", "root@localhost", 1)
    assert maria.replica_status_sql == "SHOW ALL SLAVES STATUS"
    assert maria.replication_privilege == "SLAVE MONITOR"
    assert maria.deadlock_counter_sql is None
    assert Server.detect("5.5.5-10.4.32-MariaDB", "mariadb.org binary distribution",
                         "x@y", 1).version == (10, 4, 32)
    assert Server.detect("11.4.2-MariaDB", "", "x@y", 1).replication_privilege == "SLAVE MONITOR"


def test_replica_columns_of_both_namings() -> None:
    new = normalise_replica({"Replica_IO_Running": "Yes", "Replica_SQL_Running": "No",
                             "Seconds_Behind_Source": None, "Source_Host": "db1",
                             "Source_Port": 3306, "Last_SQL_Errno": 1062,
                             "Last_SQL_Error": "dup", "Channel_Name": ""})
    assert (new["io_running"], new["sql_running"], new["source_host"]) == ("Yes", "No", "db1")
    assert new["last_sql_errno"] == 1062 and new["column_names"] == "Replica_/Source_"
    old = normalise_replica({"Slave_IO_Running": "No", "Slave_SQL_Running": "Yes",
                             "Seconds_Behind_Master": 12, "Master_Host": "db0"})
    assert (old["io_running"], old["seconds_behind"], old["source_host"]) == ("No", 12, "db0")


def test_percentiles_from_buckets() -> None:
    buckets = [(0.1, 10), (1.0, 90), (10.0, 99), (float("inf"), 100)]
    assert percentiles_from_cumulative(buckets) == {50: 1.0, 95: 10.0, 99: 10.0}
    assert percentiles_from_cumulative([(1.0, 0)]) is None


def test_mysql8_blockers_and_lock_waits_use_data_lock_waits() -> None:
    my8 = Server.detect("8.0.36", "MySQL Community Server - GPL", "monitor@%", 7)
    assert "performance_schema.data_lock_waits" in my8.blockers_sql
    assert "BLOCKING_ENGINE_TRANSACTION_ID" in my8.blockers_sql
    assert my8.lock_waits_grant == ("GRANT PROCESS ON *.* TO 'monitor'@'%'; "
                                    "GRANT SELECT ON performance_schema.* TO 'monitor'@'%';")
    maria = Server.detect("10.11.6-MariaDB", "", "monitor@%", 7)
    assert "information_schema.INNODB_LOCK_WAITS" in maria.blockers_sql


def test_mysql8_accounts_rows() -> None:
    """mysql.user as MySQL 8 returns it (no MySQL server runs here): account_locked,
    caching_sha2_password, bytes for some columns."""
    from kubestack_ai.plugins.mysql.checks.security import accounts

    base = {"Select_priv": "N", "Process_priv": "N", "Super_priv": "N"}
    rows = [
        {**base, "User": b"app", "Host": "%", "plugin": "caching_sha2_password",
         "authentication_string": b"$A$005$xyz", "account_locked": "N", "Select_priv": "Y"},
        {**base, "User": "open", "Host": "%", "plugin": "caching_sha2_password",
         "authentication_string": b"", "account_locked": "N"},
        {**base, "User": "mysql.sys", "Host": "localhost", "plugin": "caching_sha2_password",
         "authentication_string": "", "account_locked": "Y"},
        {**base, "User": "sock", "Host": "localhost", "plugin": "auth_socket",
         "authentication_string": "", "account_locked": "N"},
    ]
    got = {(a.user, a.host): a for a in accounts(rows, None)}
    assert got[("app", "%")].privileges == ["SELECT"] and not got[("app", "%")].no_password
    assert got[("open", "%")].no_password
    assert not got[("mysql.sys", "localhost")].usable
    assert not got[("sock", "localhost")].no_password  # the OS user authenticates


def test_redundant_index_rules() -> None:
    from kubestack_ai.plugins.mysql.indexes import Index, redundant

    def ix(name: str, *cols: str, unique: bool = False, kind: str = "BTREE") -> Index:
        return Index("db", "t", name, unique or name == "PRIMARY", kind, cols)

    found = redundant([ix("PRIMARY", "id"), ix("u", "a", unique=True), ix("a_dup", "a"),
                       ix("ft", "body", kind="FULLTEXT"), ix("ft2", "body", kind="FULLTEXT"),
                       ix("name10", "name(10)"), ix("name", "name"), ix("b_id", "b", "id")])
    assert {(f["index"], f["rule"], f["redundant_with"]) for f in found} == {
        ("a_dup (a)", "duplicate", "u (a)"),        # the UNIQUE one is kept
        ("ft2 (body)", "duplicate", "ft (body)"),   # FULLTEXT: exact duplicates only
    }
    # a prefix index is not the column; an index ending with the primary key is kept
    assert not redundant([ix("PRIMARY", "id"), ix("id_b", "id", "b")], innodb=False)
