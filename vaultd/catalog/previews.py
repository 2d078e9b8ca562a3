"""Previews and the preview job queue in the catalog (#7).

The queue is a table, so it survives restarts: a job is ``queued`` (with a
``not_before`` time after a failed try), ``running`` (claimed by a worker
named ``host:pid``), ``done`` or ``failed`` (with its error kept). One job
per recording; asking again raises its priority instead of adding a row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, delete, func, insert, or_, select, update

from vaultd.catalog.schema import preview_jobs, previews, recordings

PREVIEWABLE = ("video", "audio", "photo")


@dataclass(frozen=True)
class JobRow:
    id: int
    recording_id: str
    priority: int
    state: str
    attempts: int
    not_before: datetime
    first_part: bool
    last_error: str | None
    requested_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    worker: str | None


@dataclass(frozen=True)
class PreviewRow:
    recording_id: str
    state: str  # stills (poster, sprite) | partial (the first seconds) | ready
    kind: str
    main_file: str
    sha256: str
    size_bytes: int
    files: dict[str, dict[str, Any]]
    original_sha256: str
    tools: dict[str, str]
    params: dict[str, Any]
    incomplete: bool
    problems: str
    made_at: datetime
    seconds: float


def _job(row: Any) -> JobRow:
    return JobRow(**{k: row._mapping[k] for k in JobRow.__dataclass_fields__})


def _preview(row: Any) -> PreviewRow:
    m = dict(row._mapping)
    for key in ("files", "tools", "params"):
        m[key] = json.loads(m[key])
    return PreviewRow(**m)


# -- the queue -------------------------------------------------------------------

def job_of(conn: Connection, recording_id: str) -> JobRow | None:
    row = conn.execute(select(preview_jobs).where(preview_jobs.c.recording_id == recording_id)).first()
    return _job(row) if row else None


def enqueue(conn: Connection, recording_id: str, *, priority: int, requested_by: str, now: datetime,
            first_part: bool = False, again: bool = False) -> JobRow:
    """Queue a job, or raise the priority of the one there.

    A job that is done or failed is queued afresh (attempts from 0) only when
    ``again``; a waiting job that someone now asks for runs at once.
    """
    job = job_of(conn, recording_id)
    if job is None:
        conn.execute(insert(preview_jobs).values(
            recording_id=recording_id, priority=priority, state="queued", attempts=0, not_before=now,
            first_part=first_part, requested_by=requested_by, created_at=now, updated_at=now))
    elif job.state in ("done", "failed"):
        if again:
            conn.execute(update(preview_jobs).where(preview_jobs.c.id == job.id).values(
                priority=priority, state="queued", attempts=0, not_before=now, first_part=first_part,
                last_error=None, requested_by=requested_by, updated_at=now, started_at=None, worker=None))
    else:
        values: dict[str, Any] = {"priority": max(priority, job.priority), "updated_at": now,
                                  "first_part": job.first_part or first_part}
        if priority > job.priority and job.state == "queued":
            values.update(not_before=min(now, job.not_before), requested_by=requested_by)
        conn.execute(update(preview_jobs).where(preview_jobs.c.id == job.id).values(**values))
    found = job_of(conn, recording_id)
    assert found is not None
    return found


def claim(conn: Connection, *, now: datetime, worker: str, recording_id: str | None = None) -> JobRow | None:
    """Take the most urgent queued job that may run now (highest priority, oldest first),
    or the one of ``recording_id``."""
    for _try in range(5):
        q = select(preview_jobs.c.id).where(preview_jobs.c.state == "queued", preview_jobs.c.not_before <= now)
        if recording_id is not None:
            q = q.where(preview_jobs.c.recording_id == recording_id)
        row = conn.execute(q.order_by(preview_jobs.c.priority.desc(), preview_jobs.c.id).limit(1)).first()
        if row is None:
            return None
        taken = conn.execute(update(preview_jobs).where(
            preview_jobs.c.id == row.id, preview_jobs.c.state == "queued").values(
            state="running", attempts=preview_jobs.c.attempts + 1, started_at=now, updated_at=now,
            worker=worker))
        if taken.rowcount == 1:
            got = conn.execute(select(preview_jobs).where(preview_jobs.c.id == row.id)).one()
            return _job(got)
    return None


def claim_first_part(conn: Connection) -> JobRow | None:
    """Take the most urgent job whose first part someone waits for (queued or already
    running) while no preview exists yet; its first-part flag is cleared as it is taken."""
    for _try in range(5):
        row = conn.execute(
            select(preview_jobs.c.id).outerjoin(previews, previews.c.recording_id == preview_jobs.c.recording_id)
            .where(preview_jobs.c.first_part.is_(True), preview_jobs.c.state.in_(("queued", "running")),
                   or_(previews.c.recording_id.is_(None), previews.c.state == "stills"))
            .order_by(preview_jobs.c.priority.desc(), preview_jobs.c.id).limit(1)).first()
        if row is None:
            return None
        taken = conn.execute(update(preview_jobs).where(
            preview_jobs.c.id == row.id, preview_jobs.c.first_part.is_(True)).values(first_part=False))
        if taken.rowcount == 1:
            return _job(conn.execute(select(preview_jobs).where(preview_jobs.c.id == row.id)).one())
    return None


def finish(conn: Connection, job_id: int, *, now: datetime) -> None:
    conn.execute(update(preview_jobs).where(preview_jobs.c.id == job_id).values(
        state="done", last_error=None, updated_at=now, worker=None, first_part=False))


def fail(conn: Connection, job_id: int, error: str, *, now: datetime, retry_at: datetime | None) -> None:
    """Keep the error; queue again at ``retry_at``, or mark failed when None."""
    values: dict[str, Any] = {"last_error": error, "updated_at": now, "worker": None}
    if retry_at is None:
        values.update(state="failed")
    else:
        values.update(state="queued", not_before=retry_at)
    conn.execute(update(preview_jobs).where(preview_jobs.c.id == job_id).values(**values))


def delete_job(conn: Connection, recording_id: str) -> None:
    conn.execute(delete(preview_jobs).where(preview_jobs.c.recording_id == recording_id))


def running(conn: Connection) -> list[JobRow]:
    return [_job(r) for r in conn.execute(select(preview_jobs).where(preview_jobs.c.state == "running"))]


def requeue(conn: Connection, job_ids: Sequence[int], *, now: datetime) -> None:
    """Running jobs whose worker is gone go back to the queue (their try is not counted)."""
    if job_ids:
        conn.execute(update(preview_jobs).where(
            preview_jobs.c.id.in_(list(job_ids)), preview_jobs.c.state == "running").values(
            state="queued", attempts=case((preview_jobs.c.attempts > 0, preview_jobs.c.attempts - 1), else_=0), not_before=now,
            updated_at=now, worker=None))


def jobs(conn: Connection, states: Sequence[str] = ()) -> list[JobRow]:
    q = select(preview_jobs).order_by(preview_jobs.c.priority.desc(), preview_jobs.c.id)
    if states:
        q = q.where(preview_jobs.c.state.in_(list(states)))
    return [_job(r) for r in conn.execute(q)]


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(preview_jobs.c.state, func.count()).group_by(preview_jobs.c.state))
    return {state: int(n) for state, n in rows}


def without_job(conn: Connection, limit: int = 1000) -> list[str]:
    """Recordings that could have a preview and have no job yet, oldest first."""
    q = (select(recordings.c.id).outerjoin(preview_jobs, preview_jobs.c.recording_id == recordings.c.id)
         .where(preview_jobs.c.id.is_(None), recordings.c.media_type.in_(PREVIEWABLE))
         .order_by(recordings.c.ingested_at, recordings.c.id).limit(limit))
    return [r.id for r in conn.execute(q)]


def previewable_ids(conn: Connection) -> list[str]:
    q = select(recordings.c.id).where(recordings.c.media_type.in_(PREVIEWABLE)).order_by(recordings.c.id)
    return [r.id for r in conn.execute(q)]


# -- previews ------------------------------------------------------------------------

def get(conn: Connection, recording_id: str) -> PreviewRow | None:
    row = conn.execute(select(previews).where(previews.c.recording_id == recording_id)).first()
    return _preview(row) if row else None


def put(conn: Connection, row: PreviewRow) -> None:
    values = dict(row.__dict__)
    for key in ("files", "tools", "params"):
        values[key] = json.dumps(values[key], ensure_ascii=False, sort_keys=True)
    conn.execute(delete(previews).where(previews.c.recording_id == row.recording_id))
    conn.execute(insert(previews).values(**values))


def remove(conn: Connection, recording_id: str) -> None:
    conn.execute(delete(previews).where(previews.c.recording_id == recording_id))


def totals(conn: Connection) -> tuple[int, int]:
    """(previews, bytes) kept."""
    n, size = conn.execute(select(func.count(), func.coalesce(func.sum(previews.c.size_bytes), 0))).one()
    return int(n), int(size)
