"""Security: password_encryption and roles with md5 passwords, ``trust`` lines in
pg_hba_file_rules, ssl off while remote clients connect, superusers that can log in.
Reading pg_hba_file_rules and pg_authid needs more than pg_monitor: without it each is
an INFO finding naming what was not checked."""

from __future__ import annotations

from ...base import Run, category
from ...models import Severity
from ..client import quote_ident
from .common import ident, lacking, rows, setting


def queries(run: Run) -> list[tuple[str, str]]:
    out = [
        ("superusers", "SELECT rolname FROM pg_roles WHERE rolsuper AND rolcanlogin ORDER BY 1"),
        ("remote_plain", "SELECT a.pid, a.usename, a.client_addr::text AS client_addr, "
         "a.application_name FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid WHERE "
         "a.client_addr IS NOT NULL AND NOT (a.client_addr <<= '127.0.0.0/8'::inet OR "
         "a.client_addr = '::1'::inet) AND NOT s.ssl LIMIT 20"),
    ]
    me = ident(run)
    if me["superuser"] or me["hba_readable"]:
        out.append(("hba_trust", "SELECT line_number, type, database::text AS database, "
                    "user_name::text AS user_name, address, netmask, auth_method FROM "
                    "pg_hba_file_rules WHERE auth_method = 'trust' ORDER BY line_number"))
    if me["superuser"]:
        out.append(("md5_roles", "SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%' "
                    "AND rolcanlogin ORDER BY 1"))
    return out


class SecurityChecks:
    @category("security")
    def check_security(self, run: Run) -> None:
        me = ident(run)
        pe = setting(run, "password_encryption")
        if pe == "md5":
            run.finding("postgres.security.password_encryption_md5", Severity.WARNING,
                        "password_encryption is md5: new passwords are stored as MD5 hashes",
                        evidence={"password_encryption": pe},
                        suggestion="ALTER SYSTEM SET password_encryption = 'scram-sha-256'; "
                        "SELECT pg_reload_conf(); then have each role set its password again.")
        if me["superuser"]:
            md5 = [r["rolname"] for r in rows(run, "md5_roles", "security", "pg_authid") or []]
            if md5:
                run.finding("postgres.security.md5_passwords", Severity.WARNING,
                            f"{len(md5)} role(s) with an MD5 password: " + ", ".join(md5[:10]),
                            evidence={"roles": md5},
                            suggestion="With password_encryption = 'scram-sha-256': "
                            + " ".join(f"ALTER ROLE {quote_ident(r)} PASSWORD '<new>';"
                                       for r in md5[:5]))
        else:
            lacking(run, "security", "roles with MD5 passwords (pg_authid)",
                    "pg_authid is readable by superusers only",
                    "SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%';")
        if me["superuser"] or me["hba_readable"]:
            trust = rows(run, "hba_trust", "security", "pg_hba_file_rules") or []
            remote = [t for t in trust if t["type"] != "local"]
            if trust:
                lines = [{"line": t["line_number"], "type": t["type"], "database": t["database"],
                          "user": t["user_name"], "address": t["address"],
                          "netmask": t["netmask"]} for t in trust]
                run.finding("postgres.security.hba_trust",
                            Severity.WARNING if remote else Severity.INFO,
                            f"{len(trust)} pg_hba.conf line(s) with trust (no password): lines "
                            + ", ".join(str(t["line"]) for t in lines[:10]),
                            evidence={"lines": lines, "remote": len(remote)},
                            suggestion="Change trust to scram-sha-256 on those lines of "
                            "pg_hba.conf (SHOW hba_file;), then SELECT pg_reload_conf();")
        else:
            lacking(run, "security", "trust lines of pg_hba.conf (pg_hba_file_rules)",
                    "pg_hba_file_rules is readable by superusers only",
                    f"GRANT SELECT ON pg_hba_file_rules TO {quote_ident(me['usr'])}; GRANT "
                    f"EXECUTE ON FUNCTION pg_hba_file_rules() TO {quote_ident(me['usr'])};")
        plain = rows(run, "remote_plain", "security", "pg_stat_ssl") or []
        if plain:
            run.finding("postgres.security.remote_without_ssl",
                        Severity.WARNING if setting(run, "ssl") == "off" else Severity.INFO,
                        f"{len(plain)} remote client(s) connected without TLS (ssl = "
                        f"{setting(run, 'ssl')})",
                        evidence={"ssl": setting(run, "ssl"), "clients": [
                            {"pid": r["pid"], "user": r["usename"], "client": r["client_addr"],
                             "application": r["application_name"]} for r in plain]},
                        suggestion="ALTER SYSTEM SET ssl = on; (with ssl_cert_file and "
                        "ssl_key_file) and use hostssl instead of host lines in pg_hba.conf.")
        supers = [r["rolname"] for r in rows(run, "superusers", "security", "pg_roles") or []]
        run.metric("security.login_superusers", len(supers))
        others = [s for s in supers if s != "postgres"]
        if others:
            run.finding("postgres.security.login_superusers", Severity.INFO,
                        f"{len(supers)} superuser role(s) can log in: " + ", ".join(supers[:10]),
                        evidence={"roles": supers},
                        suggestion="Give applications and people roles without SUPERUSER: "
                        + " ".join(f"ALTER ROLE {quote_ident(s)} NOSUPERUSER;" for s in others[:5]))
