"""The tables, as SQLAlchemy 2 typed ORM classes.

The schema itself is created by the Alembic revisions in ``storage/migrations``; these
classes must agree with them (a test compares the two on every backend).

Portable choices, because one schema serves SQLite, PostgreSQL and MySQL/MariaDB:
- datetimes are stored as naive UTC (``UTCDateTime``) and come back timezone-aware;
  MySQL gets ``DATETIME(6)``, its default drops the fraction of a second;
- results are JSON text (``model_dump_json``), LONGTEXT on MySQL where TEXT stops at 64 KiB;
- key columns compare byte for byte on MySQL (``utf8mb4_bin``): its default collation
  is case-insensitive, and ``redis:A`` is not ``redis:a``;
- key columns are at most 255 characters so the unique keys fit MySQL's 3072-byte index
  limit in utf8mb4 (longer keys are shortened with a hash, see ``store.short_key``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

KEY_LEN = 255
ID_LEN = 128


def key_type(length: int = KEY_LEN) -> TypeEngine[str]:
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"),
                                       "mysql", "mariadb")


def long_text() -> TypeEngine[str]:
    return Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def big_id() -> TypeEngine[int]:
    # SQLite only autoincrements an INTEGER PRIMARY KEY.
    return BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, stored as naive UTC, aware UTC out. Naive input is taken as UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: dt.datetime | None,
                           dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None,
                             dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    pass


class PluginStateRow(Base):
    __tablename__ = "ksa_plugin_state"

    plugin_id: Mapped[str] = mapped_column(key_type(ID_LEN), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(32), default="unloaded")
    config: Mapped[str] = mapped_column(long_text(), default="{}")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sources: Mapped[str | None] = mapped_column(long_text(), nullable=True)
    """JSON list of the code locations reloads named (``--from``), newest last."""


class CachedResultRow(Base):
    __tablename__ = "ksa_result_cache"
    __table_args__ = (
        UniqueConstraint("target_key", "plugin_id", "categories", name="uq_ksa_result_cache_key"),
        Index("ix_ksa_result_cache_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    target_key: Mapped[str] = mapped_column(key_type())
    plugin_id: Mapped[str] = mapped_column(key_type(ID_LEN))
    categories: Mapped[str] = mapped_column(key_type())
    run_id: Mapped[str] = mapped_column(String(KEY_LEN))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    result: Mapped[str] = mapped_column(long_text())


class RunRow(Base):
    __tablename__ = "ksa_run"
    __table_args__ = (
        UniqueConstraint("run_id", name="uq_ksa_run_run_id"),
        Index("ix_ksa_run_target_started", "target_key", "started_at"),
        Index("ix_ksa_run_target_plugin_started", "target_key", "plugin_id", "started_at"),
        Index("ix_ksa_run_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(key_type())
    target_key: Mapped[str] = mapped_column(key_type())
    plugin_id: Mapped[str] = mapped_column(key_type(ID_LEN))
    categories: Mapped[str] = mapped_column(key_type())
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    duration: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    result: Mapped[str] = mapped_column(long_text())


class AuditRow(Base):
    __tablename__ = "ksa_audit"
    __table_args__ = (Index("ix_ksa_audit_at", "at"),
                      Index("ix_ksa_audit_target_at", "target", "at"),
                      Index("ix_ksa_audit_outcome_at", "outcome", "at"),
                      Index("ix_ksa_audit_task", "task_id"))

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    plugin_id: Mapped[str] = mapped_column(key_type(ID_LEN))
    target: Mapped[str] = mapped_column(key_type())
    action: Mapped[str] = mapped_column(String(ID_LEN))
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    record: Mapped[str] = mapped_column(long_text())
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """started, refused, failed, succeeded, killed, abandoned (as in ``record``)."""
    task_id: Mapped[str | None] = mapped_column(key_type(), nullable=True)
    """The Celery task that ran the action (None from ``ksa action``)."""


class RollupRow(Base):
    """One target's runs of one plugin on one UTC day, summarised when they are pruned:
    how many, the worst status, runs per status and per finding code (JSON objects)."""

    __tablename__ = "ksa_rollup_daily"
    __table_args__ = (
        UniqueConstraint("target_key", "plugin_id", "day", name="uq_ksa_rollup_daily_key"),
    )

    id: Mapped[int] = mapped_column(big_id(), primary_key=True, autoincrement=True)
    target_key: Mapped[str] = mapped_column(key_type())
    plugin_id: Mapped[str] = mapped_column(key_type(ID_LEN))
    day: Mapped[dt.date] = mapped_column(Date)
    runs: Mapped[int] = mapped_column(Integer)
    worst_status: Mapped[str] = mapped_column(String(16))
    statuses: Mapped[str] = mapped_column(Text)
    findings: Mapped[str] = mapped_column(long_text())
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class TargetLatestRow(Base):
    """The newest run of every target, kept beside the history by ``record_run`` so that
    the fleet's pages, ``/metrics`` and the notifier read one row per target instead of
    scanning the history."""

    __tablename__ = "ksa_target_latest"
    __table_args__ = (
        # two indexes only: every run rewrites its target's row, and a filter by type or
        # staleness reads one row per target anyway (10,000 rows: a few ms)
        Index("ix_ksa_target_latest_rank", "rank", "target_key"),
        Index("ix_ksa_target_latest_updated", "updated_at"),
    )

    target_key: Mapped[str] = mapped_column(key_type(), primary_key=True)
    type: Mapped[str] = mapped_column(key_type(ID_LEN))
    plugin_id: Mapped[str] = mapped_column(key_type(ID_LEN))
    run_id: Mapped[str] = mapped_column(key_type())
    status: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    duration: Mapped[float] = mapped_column(Float)
    status_since: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status_runs: Mapped[int] = mapped_column(Integer)
    started_ts: Mapped[float] = mapped_column(Double)
    """started_at as Unix seconds: the interval arithmetic in SQL, the same on every backend."""
    prev_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    stale_ts: Mapped[float | None] = mapped_column(Double, nullable=True)
    """Unix seconds after which the target is stale (twice its interval past its last run)."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    worst_code: Mapped[str | None] = mapped_column(String(KEY_LEN), nullable=True)
    worst_title: Mapped[str | None] = mapped_column(Text, nullable=True)
    findings: Mapped[str] = mapped_column(long_text())
    n_completed: Mapped[int] = mapped_column(BigInteger, default=0)
    n_timed_out: Mapped[int] = mapped_column(BigInteger, default=0)
    n_killed: Mapped[int] = mapped_column(BigInteger, default=0)
    n_failed: Mapped[int] = mapped_column(BigInteger, default=0)


class FleetMemberRow(Base):
    """A target the fleet file declares, as the beat last read it: which latest rows are
    the fleet's (the rest are one-off runs), its interval (staleness) and endpoints (a
    one-off run of a fleet endpoint is stored under its target)."""

    __tablename__ = "ksa_fleet_member"

    target_key: Mapped[str] = mapped_column(key_type(), primary_key=True)
    type: Mapped[str] = mapped_column(key_type(ID_LEN))
    endpoints: Mapped[str] = mapped_column(long_text())
    """JSON list of ``host:port``, as the fleet file spells them."""
    interval_s: Mapped[float] = mapped_column(Double)
    """Seconds between the target's diagnoses."""
    declared_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
