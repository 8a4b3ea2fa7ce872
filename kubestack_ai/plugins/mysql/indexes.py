"""Duplicate and redundant indexes, by pt-duplicate-key-checker's rules (percona-toolkit
3.2.1, DuplicateKeyFinder), as a pure function over information_schema.STATISTICS rows.

- the same columns in the same order twice (within one index type): one is dropped,
  never the PRIMARY KEY, and a UNIQUE one is kept over a plain one;
- a plain BTREE index whose columns are a left prefix of another index's: it is
  redundant (a UNIQUE one is kept: it constrains, it is not only a lookup path);
- InnoDB: a secondary index that starts with every primary key column: the primary key
  already finds the one row, and the clustered index holds every column.
A column indexed by a prefix (``name(10)``) is not the same column as ``name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Index:
    db: str
    table: str
    name: str
    unique: bool
    kind: str
    columns: tuple[str, ...]

    @property
    def primary(self) -> bool:
        return self.name == "PRIMARY"

    def show(self) -> str:
        return f"{self.name} ({', '.join(self.columns)})"


def ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def drop(ix: Index) -> str:
    return f"ALTER TABLE {ident(ix.db)}.{ident(ix.table)} DROP INDEX {ident(ix.name)};"


def by_table(stat_rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[Index]]:
    """STATISTICS rows (db, tbl, idx, non_unique, seq, col, sub_part, type) -> indexes."""
    cols: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
    meta: dict[tuple[str, str, str], tuple[bool, str]] = {}
    for r in stat_rows:
        key = (str(r["db"]), str(r["tbl"]), str(r["idx"]))
        col = str(r["col"]) + (f"({int(r['sub_part'])})" if r.get("sub_part") else "")
        cols.setdefault(key, []).append((int(r["seq"]), col))
        meta[key] = (not int(r["non_unique"]), str(r["type"] or "BTREE").upper())
    out: dict[tuple[str, str], list[Index]] = {}
    for (db, tbl, name), cs in cols.items():
        unique, kind = meta[(db, tbl, name)]
        out.setdefault((db, tbl), []).append(
            Index(db, tbl, name, unique, kind, tuple(c for _, c in sorted(cs))))
    return out


def _rank(ix: Index) -> tuple[int, int]:
    """Which of two identical indexes to keep: PRIMARY, then UNIQUE."""
    return (ix.primary, ix.unique)


def redundant(indexes: list[Index], innodb: bool = True) -> list[dict[str, Any]]:
    """The indexes of one table to drop, each with the index that makes it redundant,
    the rule and the statement."""
    out: list[dict[str, Any]] = []
    dropped: set[str] = set()

    def add(ix: Index, because: Index, rule: str) -> None:
        dropped.add(ix.name)
        out.append({"table": f"{ix.db}.{ix.table}", "index": ix.show(),
                    "redundant_with": because.show(), "rule": rule, "fix": drop(ix)})

    ordered = sorted(indexes, key=lambda i: (not i.primary, i.name))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if a.name in dropped or b.name in dropped or a.kind != b.kind:
                continue
            if a.columns == b.columns:
                keep, lose = (a, b) if _rank(a) >= _rank(b) else (b, a)
                add(lose, keep, "duplicate")
    pk = next((i for i in ordered if i.primary), None)
    for a in ordered:
        if a.name in dropped or a.primary or a.kind != "BTREE":
            continue
        if not a.unique:
            longer = [b for b in ordered if b.name != a.name and b.name not in dropped
                      and b.kind == "BTREE" and len(b.columns) > len(a.columns)
                      and b.columns[:len(a.columns)] == a.columns]
            if longer:
                add(a, longer[0], "left prefix")
                continue
        if innodb and pk is not None and a.columns[:len(pk.columns)] == pk.columns:
            add(a, pk, "starts with the primary key")
    return out
