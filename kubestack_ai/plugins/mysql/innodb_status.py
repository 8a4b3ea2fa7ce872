"""Parsing ``SHOW ENGINE INNODB STATUS``: the latest detected deadlock (both
transactions, their statements, the victim) and a few counters the status variables
lack on some servers (history list length)."""

from __future__ import annotations

import re
from typing import Any

_SECTION = re.compile(r"^-{4,}\n([A-Z][A-Z /]+)\n-{4,}\n", re.M)
_TRX = re.compile(r"^\*\*\* \((\d+)\) TRANSACTION:\n", re.M)
_THREAD = re.compile(
    r"^(?:MySQL|MariaDB) thread id (\d+), OS thread handle \S+, query id (\d+)\s*(.*)$", re.M)
_TRX_HEAD = re.compile(r"^TRANSACTION (\d+), ACTIVE (\d+) sec", re.M)
_TABLE = re.compile(r"(?:of table|table) (`[^`]+`\.`[^`]+`)")
_LOCK_MODE = re.compile(r"trx id \d+ (lock[_ ]mode [A-Z-]+(?: [a-z ]+?)?)(?: waiting)?$", re.M)
_VICTIM = re.compile(r"^\*\*\* WE ROLL BACK TRANSACTION \((\d+)\)", re.M)
_HISTORY = re.compile(r"^History list length (\d+)", re.M)
_WHEN = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})", re.M)

MAX_STATEMENT = 1024


def sections(text: str) -> dict[str, str]:
    """Section title -> body."""
    out: dict[str, str] = {}
    marks = list(_SECTION.finditer(text))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out[m.group(1).strip()] = text[m.end():end]
    return out


def history_list_length(text: str) -> int | None:
    m = _HISTORY.search(text)
    return int(m.group(1)) if m else None


def latest_deadlock(text: str) -> dict[str, Any] | None:
    """The LATEST DETECTED DEADLOCK section as data, or None when there was none."""
    body = sections(text).get("LATEST DETECTED DEADLOCK")
    if not body:
        return None
    when = _WHEN.search(body)
    starts = list(_TRX.finditer(body))
    victim = _VICTIM.search(body)
    trxs = []
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else (
            victim.start() if victim else len(body))
        trxs.append(_transaction(int(m.group(1)), body[m.end():end]))
    return {
        "at": when.group(1) if when else None,
        "transactions": trxs,
        "victim": int(victim.group(1)) if victim else None,
    }


def _transaction(number: int, chunk: str) -> dict[str, Any]:
    out: dict[str, Any] = {"number": number}
    head = _TRX_HEAD.search(chunk)
    if head:
        out["trx_id"] = head.group(1)
        out["active_seconds"] = int(head.group(2))
    th = _THREAD.search(chunk)
    statement = ""
    if th:
        out["thread_id"] = int(th.group(1))
        rest = th.group(3).split()
        if len(rest) >= 2:
            out["host"], out["user"] = rest[0], rest[1]
        lines = []
        for line in chunk[th.end():].lstrip("\n").splitlines():
            if line.startswith("*** ") or line.startswith("RECORD LOCKS") or \
                    line.startswith("TABLE LOCK"):
                break
            lines.append(line)
        statement = "\n".join(lines).strip()
    out["statement"] = statement[:MAX_STATEMENT]
    out["tables"] = sorted(set(_TABLE.findall(chunk)))
    modes = _LOCK_MODE.findall(chunk)
    if modes:
        out["lock_modes"] = sorted(set(m.strip() for m in modes))
    return out
