"""Durable job records in SQL (SQLite by default, PostgreSQL through ``ONEPASS_DATABASE_URL``).

The store only keeps rows; files live under the data dir (:mod:`app.jobs.files`). Every method opens its
own short session, so the store is safe to call from the event loop's thread pool and from worker threads.
State changes are conditional updates (``WHERE status = 'queued'``), so two processes sharing one database
never claim the same job twice.

Life of a job: ``queued`` → ``running`` → ``succeeded`` | ``failed``; ``cancelled`` from either of the
first two. A process that dies leaves ``running`` rows behind; :meth:`JobStore.recover` puts them back in
the queue at the next start, or fails them once they have been started ``max_attempts`` times.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    case,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})


def new_id() -> str:
    """A random 32-hex-digit id (uuid4); unguessable, so ids double as capability links."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Base(DeclarativeBase):
    pass


class _JobRow(_Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    batch_id: Mapped[str | None] = mapped_column(String(32), index=True)
    scene: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(16))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    image_names: Mapped[list[str]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    timings: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class _BatchRow(_Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _aware(t: datetime | None) -> datetime | None:
    """SQLite drops the zone; every time we store is UTC, so put it back."""
    if t is None or t.tzinfo is not None:
        return t
    return t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class JobRecord:
    """A detached snapshot of one job row."""

    id: str
    status: str
    stage: str
    progress: float
    options: dict[str, Any]
    image_names: list[str]
    created_at: datetime
    updated_at: datetime
    attempts: int = 0
    priority: int = 0
    error: str | None = None
    error_kind: str | None = None
    batch_id: str | None = None
    scene: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @staticmethod
    def _from_row(r: _JobRow) -> JobRecord:
        return JobRecord(
            id=r.id,
            status=r.status,
            stage=r.stage,
            progress=float(r.progress),
            options=dict(r.options or {}),
            image_names=list(r.image_names or []),
            created_at=_aware(r.created_at),
            updated_at=_aware(r.updated_at),
            attempts=r.attempts,
            priority=r.priority,
            error=r.error,
            error_kind=r.error_kind,
            batch_id=r.batch_id,
            scene=r.scene,
            idempotency_key=r.idempotency_key,
            fingerprint=r.fingerprint,
            timings=dict(r.timings or {}),
            cancel_requested=bool(r.cancel_requested),
            started_at=_aware(r.started_at),
            finished_at=_aware(r.finished_at),
        )


@dataclass(frozen=True)
class BatchRecord:
    id: str
    source: str
    options: dict[str, Any]
    created_at: datetime


class IdempotencyConflict(Exception):
    """Another job already holds this Idempotency-Key (raced in between lookup and insert)."""


class JobStore:
    """Job and batch rows behind one SQLAlchemy engine."""

    def __init__(self, url: str) -> None:
        connect_args: dict[str, Any] = {}
        if url.startswith("sqlite"):
            connect_args = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, connect_args=connect_args)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        _Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    # ---- creation and lookup -------------------------------------------------------------------------

    def create_job(
        self,
        *,
        job_id: str,
        options: dict[str, Any],
        image_names: Sequence[str],
        priority: int = 0,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
        batch_id: str | None = None,
        scene: str | None = None,
    ) -> JobRecord:
        now = utcnow()
        row = _JobRow(
            id=job_id,
            batch_id=batch_id,
            scene=scene,
            status=QUEUED,
            stage="queued",
            progress=0.0,
            options=options,
            image_names=list(image_names),
            priority=priority,
            attempts=0,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            timings={},
            cancel_requested=False,
            created_at=now,
            updated_at=now,
        )
        with self._sessions() as s:
            s.add(row)
            try:
                s.commit()
            except IntegrityError as e:
                s.rollback()
                raise IdempotencyConflict(idempotency_key) from e
            return JobRecord._from_row(row)

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._sessions() as s:
            row = s.get(_JobRow, job_id)
            return JobRecord._from_row(row) if row else None

    def find_by_idempotency_key(self, key: str) -> JobRecord | None:
        with self._sessions() as s:
            row = s.scalars(select(_JobRow).where(_JobRow.idempotency_key == key)).first()
            return JobRecord._from_row(row) if row else None

    def list_jobs(
        self, *, status: str | None = None, batch_id: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[JobRecord], int]:
        """Newest first; returns (page, total matching)."""
        q = select(_JobRow)
        c = select(func.count()).select_from(_JobRow)
        if status is not None:
            q, c = q.where(_JobRow.status == status), c.where(_JobRow.status == status)
        if batch_id is not None:
            q, c = q.where(_JobRow.batch_id == batch_id), c.where(_JobRow.batch_id == batch_id)
        if batch_id is not None:
            q = q.order_by(_JobRow.scene, _JobRow.id)
        else:
            q = q.order_by(_JobRow.created_at.desc(), _JobRow.id)
        with self._sessions() as s:
            rows = s.scalars(q.limit(limit).offset(offset)).all()
            return [JobRecord._from_row(r) for r in rows], int(s.scalar(c) or 0)

    def counts_by_status(self) -> dict[str, int]:
        with self._sessions() as s:
            got = dict(s.execute(select(_JobRow.status, func.count()).group_by(_JobRow.status)).all())
        return {st: int(got.get(st, 0)) for st in STATUSES}

    # ---- state changes ---------------------------------------------------------------------------------

    def claim(self, limit: int) -> list[JobRecord]:
        """Move up to ``limit`` queued jobs (highest priority, then oldest) to running; returns them."""
        claimed = []
        with self._sessions() as s:
            ids = s.scalars(
                select(_JobRow.id)
                .where(_JobRow.status == QUEUED)
                .order_by(_JobRow.priority.desc(), _JobRow.created_at, _JobRow.id)
                .limit(limit)
            ).all()
            for job_id in ids:
                now = utcnow()
                res = s.execute(
                    _JobRow.__table__.update()
                    .where(_JobRow.id == job_id, _JobRow.status == QUEUED)
                    .values(
                        status=RUNNING,
                        stage="loading",
                        progress=0.05,
                        attempts=_JobRow.attempts + 1,
                        started_at=now,
                        updated_at=now,
                    )
                )
                if res.rowcount == 1:
                    claimed.append(job_id)
            s.commit()
            return [JobRecord._from_row(s.get(_JobRow, i, populate_existing=True)) for i in claimed]

    def set_progress(self, job_id: str, *, stage: str, progress: float) -> bool:
        """Record a running job's stage; False when the job is no longer running (cancelled, deleted).

        Progress never goes back: an update older than the one stored (they come from several threads)
        is ignored, and still answers True while the job runs.
        """
        with self._sessions() as s:
            res = s.execute(
                _JobRow.__table__.update()
                .where(_JobRow.id == job_id, _JobRow.status == RUNNING, _JobRow.progress <= float(progress))
                .values(stage=stage, progress=float(progress), updated_at=utcnow())
            )
            s.commit()
            if res.rowcount == 1:
                return True
            return s.scalar(select(_JobRow.status).where(_JobRow.id == job_id)) == RUNNING

    def succeed(self, job_id: str, timings: dict[str, float]) -> bool:
        now = utcnow()
        return self._update(
            job_id, (RUNNING,), status=SUCCEEDED, stage="done", progress=1.0, timings=timings, finished_at=now
        )

    def fail(
        self, job_id: str, error: str, timings: dict[str, float] | None = None, *, kind: str = "internal"
    ) -> bool:
        """Fail a queued or running job; ``kind`` is input, oom or internal (decides the sync status)."""
        values: dict[str, Any] = {
            "status": FAILED,
            "stage": "failed",
            "error": error,
            "error_kind": kind,
            "finished_at": utcnow(),
        }
        if timings is not None:
            values["timings"] = timings
        return self._update(job_id, (QUEUED, RUNNING), **values)

    def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a queued or running job (a running one is dropped by its worker at the next stage)."""
        self._update(
            job_id,
            (QUEUED, RUNNING),
            status=CANCELLED,
            stage="cancelled",
            cancel_requested=True,
            finished_at=utcnow(),
        )
        return self.get_job(job_id)

    def delete(self, job_id: str) -> bool:
        with self._sessions() as s:
            row = s.get(_JobRow, job_id)
            if row is None:
                return False
            s.delete(row)
            s.commit()
            return True

    def release(self, job_ids: Sequence[str]) -> list[str]:
        """Give running jobs back to the queue after an orderly shutdown (their attempt does not count)."""
        released = []
        with self._sessions() as s:
            for job_id in job_ids:
                res = s.execute(
                    _JobRow.__table__.update()
                    .where(_JobRow.id == job_id, _JobRow.status == RUNNING)
                    .values(
                        status=QUEUED,
                        stage="queued",
                        progress=0.0,
                        attempts=case((_JobRow.attempts > 0, _JobRow.attempts - 1), else_=0),
                        updated_at=utcnow(),
                    )
                )
                if res.rowcount == 1:
                    released.append(job_id)
            s.commit()
        return released

    def recover(self, max_attempts: int) -> tuple[list[str], list[str]]:
        """After a restart: re-queue jobs left running, or fail those started ``max_attempts`` times.

        Returns (re-queued ids, failed ids).
        """
        requeued, failed = [], []
        with self._sessions() as s:
            rows = s.scalars(select(_JobRow).where(_JobRow.status == RUNNING)).all()
            now = utcnow()
            for r in rows:
                r.updated_at = now
                if r.attempts >= max_attempts:
                    r.status, r.stage, r.finished_at, r.error_kind = FAILED, "failed", now, "internal"
                    r.error = (
                        f"the service stopped while this job was running, {r.attempts} times "
                        f"(limit ONEPASS_MAX_ATTEMPTS={max_attempts}); not retrying"
                    )
                    failed.append(r.id)
                else:
                    r.status, r.stage, r.progress = QUEUED, "queued", 0.0
                    requeued.append(r.id)
            s.commit()
        return requeued, failed

    def _update(self, job_id: str, allowed: tuple[str, ...], **values: Any) -> bool:
        values["updated_at"] = utcnow()
        with self._sessions() as s:
            res = s.execute(
                _JobRow.__table__.update()
                .where(_JobRow.id == job_id, _JobRow.status.in_(allowed))
                .values(**values)
            )
            s.commit()
            return res.rowcount == 1

    # ---- batches --------------------------------------------------------------------------------------

    def create_batch(self, *, batch_id: str, source: str, options: dict[str, Any]) -> BatchRecord:
        row = _BatchRow(id=batch_id, source=source, options=options, created_at=utcnow())
        with self._sessions() as s:
            s.add(row)
            s.commit()
            return BatchRecord(row.id, row.source, dict(row.options), _aware(row.created_at))

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        with self._sessions() as s:
            row = s.get(_BatchRow, batch_id)
            if row is None:
                return None
            return BatchRecord(row.id, row.source, dict(row.options), _aware(row.created_at))

    def batch_counts(self, batch_id: str) -> dict[str, int]:
        with self._sessions() as s:
            got = dict(
                s.execute(
                    select(_JobRow.status, func.count())
                    .where(_JobRow.batch_id == batch_id)
                    .group_by(_JobRow.status)
                ).all()
            )
        return {st: int(got.get(st, 0)) for st in STATUSES}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers (status polls) run while a worker writes; busy_timeout waits instead of failing."""
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
