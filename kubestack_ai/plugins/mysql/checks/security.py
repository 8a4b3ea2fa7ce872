"""Security: accounts anyone can use (anonymous, no password), accounts on any host
with global privileges, root reachable over the network (mysqltuner's security
recommendations, pt-show-grants), and host name resolution at login (mysqltuner).

Every finding names the accounts and gives the statement that fixes each one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ...base import Run, category
from ...models import Severity
from .common import on, rows, server, var

# plugins that check a password: an empty authentication string lets anyone in
PASSWORD_PLUGINS = frozenset({"", "mysql_native_password", "mysql_old_password",
                              "caching_sha2_password", "sha256_password", "ed25519", "parsec"})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_PRIV_NAMES = {"Repl_slave": "REPLICATION SLAVE", "Repl_client": "REPLICATION CLIENT",
               "Create_tmp_table": "CREATE TEMPORARY TABLES", "Show_db": "SHOW DATABASES",
               "Grant": "GRANT OPTION", "Delete_history": "DELETE HISTORY"}
# an IPv4 address, subnet or pattern ('10.0.0.%', '10.0.0.0/255.255.255.0'), or IPv6
_IP_OR_PATTERN = re.compile(r"^([0-9.%_/]+|[0-9a-fA-F.%_/]*:[0-9a-fA-F:.%_/]*)$")


def queries(run: Run) -> list[tuple[str, str]]:
    out = [("accounts", "SELECT * FROM mysql.user")]
    srv = server(run)
    if srv.mariadb and srv.version >= (10, 4, 0):
        # mysql.user is a view there: account locks and OR-ed authentications live in JSON
        out.append(("global_priv", "SELECT User AS user, Host AS host, Priv AS priv "
                    "FROM mysql.global_priv"))
    return out


def _named(host: str) -> bool:
    """A host given by name (not an address, subnet or pattern of addresses)."""
    return not _IP_OR_PATTERN.match(host)


def quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"


def local(host: str, own_name: str | None = None) -> bool:
    """Only this machine: localhost, loopback, or the server's own host name (the
    account mariadb-install-db / mysql_install_db create as 'root'@'<hostname>')."""
    return host in LOCAL_HOSTS or host.startswith("127.") or (
        bool(own_name) and host.lower() == (own_name or "").lower())


@dataclass
class Account:
    user: str
    host: str
    locked: bool = False
    role: bool = False
    no_password: bool = False
    privileges: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{quote(self.user)}@{quote(self.host)}"

    @property
    def usable(self) -> bool:
        return not self.locked and not self.role


def accounts(user_rows: list[dict[str, Any]], priv_rows: list[dict[str, Any]] | None
             ) -> list[Account]:
    """Accounts from mysql.user, with MariaDB 10.4+'s mysql.global_priv when read."""
    out: dict[tuple[str, str], Account] = {}
    for raw in user_rows:
        # MySQL 8 returns some of mysql.user's columns as bytes
        r = {k: v.decode(errors="replace") if isinstance(v, bytes) else v for k, v in raw.items()}
        a = Account(str(r.get("User") or ""), str(r.get("Host") or ""))
        a.locked = str(r.get("account_locked", "N")).upper() == "Y"
        a.role = str(r.get("is_role", "N")).upper() == "Y"
        plugin = str(r.get("plugin") or "")
        secret = str(r.get("authentication_string") or "") or (
            str(r.get("Password") or "") if plugin in ("", "mysql_native_password") else "")
        a.no_password = plugin in PASSWORD_PLUGINS and secret == ""
        a.privileges = [_PRIV_NAMES.get(k[:-5], k[:-5].replace("_", " ").upper())
                        for k, v in r.items() if k.endswith("_priv") and str(v).upper() == "Y"]
        out[(a.user, a.host)] = a
    for r in priv_rows or []:
        known = out.get((str(r["user"]), str(r["host"])))
        if known is None:
            continue
        a = known
        try:
            priv = json.loads(r["priv"] or "{}")
        except ValueError:
            continue
        a.locked = bool(priv.get("account_locked"))
        a.role = bool(priv.get("is_role"))
        top = {"plugin": priv.get("plugin", ""),
               "authentication_string": priv.get("authentication_string", "")}
        alternatives = [alt or top for alt in priv.get("auth_or", [top])]
        a.no_password = any(str(alt.get("plugin", "")) in PASSWORD_PLUGINS
                            and str(alt.get("authentication_string", "")) == ""
                            for alt in alternatives)
    return list(out.values())


class SecurityChecks:
    @category("security")
    def check_security(self, run: Run) -> None:
        srv = server(run)
        user_rows = rows(run, "accounts", "security", "the accounts (mysql.user)",
                         srv.grant("SELECT", "mysql.user"))
        if user_rows is None:
            self._name_resolution(run, None)
            return
        priv_rows = rows(run, "global_priv", "security", "account locks and authentication "
                         "(mysql.global_priv)", srv.grant("SELECT", "mysql.global_priv"))
        # with skip_name_resolve ON an account named by host name never matches a login
        by_ip = on(run, "skip_name_resolve")
        accts = [a for a in accounts(user_rows, priv_rows) if a.usable
                 and not (by_ip and a.host != "localhost" and _named(a.host))]
        run.metric("security.accounts", len(accts))
        self._anonymous(run, accts)
        self._no_password(run, accts)
        self._root_remote(run, accts)
        self._wildcard(run, accts)
        self._name_resolution(run, accts)

    @staticmethod
    def _report(run: Run, code: str, severity: Severity, title: str,
                found: list[Account], fixes: list[str], extra: dict[str, Any] | None = None,
                advice: str = "") -> None:
        evidence: dict[str, Any] = {
            "accounts": [{"account": a.name, "fix": f} for a, f in zip(found, fixes, strict=True)]}
        run.finding(f"mysql.security.{code}", severity, title,
                    evidence=evidence | (extra or {}),
                    suggestion=" ".join(dict.fromkeys(fixes)) + (f" {advice}" if advice else ""))

    def _anonymous(self, run: Run, accts: list[Account]) -> None:
        found = [a for a in accts if a.user == ""]
        run.metric("security.anonymous_accounts", len(found))
        if found:
            remote = any(not local(a.host, var(run, 'hostname')) for a in found)
            self._report(run, "anonymous_user",
                         Severity.CRITICAL if remote else Severity.WARNING,
                         f"{len(found)} anonymous accounts: anyone "
                         + ("on the network " if remote else "on this host ")
                         + f"can log in ({', '.join(a.name for a in found)})",
                         found, [f"DROP USER {a.name};" for a in found])

    def _no_password(self, run: Run, accts: list[Account]) -> None:
        found = [a for a in accts if a.user != "" and a.no_password]
        run.metric("security.accounts_without_password", len(found))
        if found:
            remote = any(not local(a.host, var(run, 'hostname')) for a in found)
            self._report(run, "no_password", Severity.CRITICAL if remote else Severity.WARNING,
                         f"{len(found)} accounts have no password "
                         f"({', '.join(a.name for a in found)})",
                         found, [f"ALTER USER {a.name} IDENTIFIED BY '<new password>';"
                                 for a in found],
                         {"reachable_from_network": remote},
                         "Or let a local administrator in by the OS user instead: ALTER USER "
                         "... IDENTIFIED VIA unix_socket (MariaDB) / IDENTIFIED WITH auth_socket "
                         "(MySQL).")

    def _root_remote(self, run: Run, accts: list[Account]) -> None:
        found = [a for a in accts if a.user == "root" and not local(a.host, var(run, 'hostname'))]
        if found:
            self._report(run, "root_remote", Severity.WARNING,
                         f"root can log in from other hosts ({', '.join(a.name for a in found)})",
                         found, [f"DROP USER {a.name};" for a in found],
                         advice="Administer from the server itself ('root'@'localhost'), or "
                         "through a named account limited to the admin hosts.")

    def _wildcard(self, run: Run, accts: list[Account]) -> None:
        found = [a for a in accts if a.host == "%" and a.user not in ("", "root")
                 and a.privileges]
        if found:
            self._report(run, "wildcard_host_privileges", Severity.WARNING,
                         f"{len(found)} accounts on any host ('%') hold global privileges "
                         f"({', '.join(a.name for a in found)})",
                         found, [f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {a.name};"
                                 for a in found],
                         {"global_privileges": {a.name: a.privileges for a in found}},
                         "then grant what each needs on its own schema (GRANT SELECT, INSERT, "
                         "UPDATE, DELETE ON app.* TO ...), or limit the host: RENAME USER "
                         "'u'@'%' TO 'u'@'10.0.0.%';")

    def _name_resolution(self, run: Run, accts: list[Account] | None) -> None:
        value = var(run, "skip_name_resolve")
        run.metric("security.skip_name_resolve", value)
        if value is None or on(run, "skip_name_resolve") or on(run, "skip_networking"):
            return
        named = [a for a in accts or [] if not local(a.host, var(run, 'hostname'))
                 and _named(a.host)]
        fixes = [f"RENAME USER {a.name} TO {quote(a.user)}@'<its IP or subnet>';" for a in named]
        run.finding("mysql.security.skip_name_resolve_off", Severity.WARNING,
                    "skip_name_resolve is OFF: every login waits for a reverse DNS lookup, "
                    "and a DNS outage or a forged PTR record decides who gets in",
                    evidence={"skip_name_resolve": value,
                              "accounts_by_host_name": [a.name for a in named],
                              "rule": "mysqltuner: name resolution is active"},
                    suggestion=" ".join(fixes + [
                        "Then skip_name_resolve=ON in my.cnf ([mysqld]) and restart (the "
                        "variable is read-only at runtime); accounts named by host name stop "
                        "matching once it is on."]))
