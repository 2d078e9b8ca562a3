"""The catalog's tables (SQLAlchemy Core). Migrations in ``migrations/``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive input is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


metadata = MetaData()

vault_meta = Table(
    "vault_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

ingest_sessions = Table(
    "ingest_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("source", Text, nullable=False),
    Column("device_serial", String(64)),
    Column("actor", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("summary", Text),
)

recordings = Table(
    "recordings",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("size_bytes", Integer, nullable=False),
    Column("original_name", Text, nullable=False),
    Column("original_name_raw", LargeBinary, nullable=False),
    Column("name_oddities", Text, nullable=False),
    Column("source_path", Text, nullable=False),
    Column("media_type", String(8), nullable=False),
    Column("device_serial", String(64)),
    Column("device_model", String(128)),
    Column("officer_id", String(64), index=True),
    Column("recorded_start", UTCDateTime),
    Column("recorded_end", UTCDateTime),
    Column("time_source", String(16), nullable=False),
    Column("clock_offset_s", Float),
    Column("time_flags", Text, nullable=False),
    Column("ingested_at", UTCDateTime, nullable=False),
    Column("ingest_deadline", UTCDateTime),
    Column("on_time", Boolean),
    Column("duration_s", Float),
    Column("video_codec", String(32)),
    Column("audio_codec", String(32)),
    Column("width", Integer),
    Column("height", Integer),
    Column("damaged", Boolean, nullable=False),
    Column("damage_reasons", Text, nullable=False),
    Column("important", Boolean, nullable=False),
    Column("making_method", Text, nullable=False),
    Column("maker", String(128)),
    Column("ingest_session", String(32), ForeignKey("ingest_sessions.id"), nullable=False),
    Column("extra", Text, nullable=False),
    Column("unit", String(128), index=True),  # the accountable officer's unit at ingest
    Column("confidentiality", String(16), nullable=False, server_default="normal"),
    Index("ix_recordings_unit_start", "unit", "recorded_start", "id"),
    Index("ix_recordings_officer_start", "officer_id", "recorded_start", "id"),
    Index("ix_recordings_device_start", "device_serial", "recorded_start", "id"),  # 0015
    Index("ix_recordings_start_id", "recorded_start", "id"),  # 0015
)

sightings = Table(
    "sightings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recording_id", String(16), ForeignKey("recordings.id"), nullable=False, index=True),
    Column("session_id", String(32), ForeignKey("ingest_sessions.id"), nullable=False),
    Column("device_serial", String(64)),
    Column("source_path", Text, nullable=False),
    Column("name_raw", LargeBinary, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("mtime", UTCDateTime),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("wiped_at", UTCDateTime),
)

file_events = Table(
    "file_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(32), ForeignKey("ingest_sessions.id"), nullable=False, index=True),
    Column("source_path", Text, nullable=False),
    Column("name_raw", LargeBinary, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

ingest_intents = Table(
    "ingest_intents",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("session_id", String(32), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

scrub_results = Table(
    "scrub_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recording_id", String(16), ForeignKey("recordings.id"), nullable=False, index=True),
    Column("checked_at", UTCDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("problem", Text),
)

# -- the audit log (append-only; triggers refuse UPDATE and DELETE) -----------

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("entry", LargeBinary, nullable=False),  # canonical JSON (RFC 8785), exact bytes
    Column("type", String(48), nullable=False),
    Column("actor", String(160), nullable=False),
    Column("evidence_id", String(16)),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_audit_entries_evidence_idx", "evidence_id", "idx"),
)

audit_nodes = Table(
    "audit_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("note", LargeBinary, nullable=False),  # the signed note, exact bytes
    Column("created_at", UTCDateTime, nullable=False),
)

AUDIT_APPEND_ONLY = ("audit_entries", "audit_nodes", "audit_checkpoints")

# -- people, devices and access (R5, R9, R13) ------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("roles", Text, nullable=False),  # JSON list of role names
    Column("unit", String(128)),
    Column("officer_number", String(32), unique=True),
    Column("clearance", String(16), nullable=False),
    Column("password_hash", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    Column("display_name", String(128)),  # as people write it (e.g. 王小明); the name is the ASCII login
    Column("pending_roles", Text),  # JSON list of roles given but not yet approved (leader, supervisor)
    Column("pending_by", String(160)),  # who gave them: the approver must be someone else
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("origin", String(16)),  # login (a password sign-in) or service (an admin, for a service user)
)

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(128), nullable=False, index=True),  # the client's address, without port
)

#: Failed logins and bad tokens from one source within a minute after the first
#: (which has its own audit entry): counted here, written as one entry later.
auth_noise = Table(
    "auth_noise",
    metadata,
    Column("source", String(128), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("window_start", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Column("suppressed", Integer, nullable=False),
    Column("names", Text, nullable=False),  # JSON: the first few names tried
)

device_assignments = Table(
    "device_assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_serial", String(64), nullable=False, index=True),
    Column("officer_number", String(32), nullable=False),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("valid_until", UTCDateTime),
)

access_requests = Table(
    "access_requests",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("requester_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("requester_unit", String(128)),
    Column("purpose", Text, nullable=False),
    Column("notice_number", String(128)),
    Column("case_number", String(128)),
    Column("recording_ids", Text, nullable=False),  # JSON list
    Column("expires_days", Integer, nullable=False),
    Column("uses", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved | denied
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_by", Integer, ForeignKey("users.id")),
    Column("decided_at", UTCDateTime),
    Column("decision_reason", Text),
)

grants = Table(
    "grants",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("request_id", String(16), ForeignKey("access_requests.id"), nullable=False, unique=True),
    Column("grantee_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("kind", String(24), nullable=False),
    Column("recording_ids", Text, nullable=False),  # JSON list
    Column("purpose", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("uses_total", Integer, nullable=False),
    Column("uses_left", Integer, nullable=False),
    Column("approved_by", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# One use of a grant is one copy of one recording (#16.10, migration 0014; see vaultd/grantuse.py).
# grants.uses_left is no longer written: uses left = uses_total - copies open or complete, per recording.
grant_copies = Table(
    "grant_copies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("grant_id", String(16), ForeignKey("grants.id"), nullable=False),
    Column("recording_id", String(16), nullable=False),
    Column("kind", String(16), nullable=False),  # download | export | legacy
    Column("state", String(16), nullable=False),  # open | complete | returned
    Column("export_id", String(32)),
    Column("delivered", Text, nullable=False),  # JSON [[first, last], ...] bytes sent, merged
    Column("reading", Text, nullable=False),  # JSON [[id, first, last, since], ...] reads in progress
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Index("ix_grant_copies_grant", "grant_id", "recording_id", "state"),
    Index("ix_grant_copies_export", "export_id"),
)

# -- the docking daemon: devices, docks, alerts (#5; migration 0008) ------------

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),  # e.g. device.unknown, scrub.mismatch
    Column("subject", Text, nullable=False),  # what it is about: a serial, a recording id...
    Column("severity", String(16), nullable=False),  # info | warning | critical
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False),  # JSON object
    Column("raised_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),
    Column("cleared_at", UTCDateTime),
    Column("cleared_by", String(128)),
    Column("clear_note", Text),
    Index("ix_alerts_open", "cleared_at", "kind", "subject"),
)

devices = Table(  # cameras known to this station (R13); a serial may repeat: never merged
    "devices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("serial", String(64), nullable=False, index=True),  # 产品序号 as the camera reports it
    Column("model", String(128)),
    Column("usb_id", String(9)),  # vvvv:pppp
    Column("usb_serial", String(128)),
    Column("driver", String(64)),
    Column("status", String(16), nullable=False),  # unknown | enrolled | retired
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("enrolled_at", UTCDateTime),
    Column("enrolled_by", String(128)),
    Column("retired_at", UTCDateTime),
    Column("retired_by", String(128)),
    Column("last_docked_at", UTCDateTime),
    Column("last_port", String(256)),
    Column("clock_offset_s", Float),  # camera minus station, at the last dock
    Column("clock_read_at", UTCDateTime),
    Column("battery_percent", Integer),
    Column("storage_free_bytes", BigInteger),
    Column("storage_total_bytes", BigInteger),
    Column("note", Text),
)

docks = Table(  # every time a camera was docked: when, where, what came of it
    "docks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", Integer, ForeignKey("devices.id"), index=True),
    Column("serial", String(64)),
    Column("port", String(256)),
    Column("source", Text, nullable=False),  # mount point or dock folder path
    Column("docked_at", UTCDateTime, nullable=False, index=True),
    Column("undocked_at", UTCDateTime),
    Column("session_id", String(32)),  # the ingest session, when one ran
    Column("outcome", String(16), nullable=False),  # docked | ingesting | complete | incomplete | ignored | failed
    Column("detail", Text),
)

# -- cases, labels, retention, holds, purge batches (#6; migration 0009) --------

cases = Table(  # one case, one file (一案一卷, R8)
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(128), nullable=False, unique=True),  # 案件编号, as the agency writes it
    Column("title", Text, nullable=False),
    Column("unit", String(128), index=True),
    Column("handler", String(128)),  # 承办人
    Column("party", Text),  # 行政相对人
    Column("confidentiality", String(16), nullable=False),  # R9: normal | confidential | secret
    Column("act_ended_at", UTCDateTime),  # when the enforcement act ended: R8 file deadline + 30 days
    Column("opened_at", UTCDateTime, nullable=False),
    Column("opened_by", String(160), nullable=False),
    Column("closed_at", UTCDateTime),
    Column("closed_by", String(160)),
    Column("archived_at", UTCDateTime),
    Column("archived_by", String(160)),
    Column("file_keep_months", Integer),  # case file archive period; null: the evidence class default
)

case_recordings = Table(  # recordings linked to a case as evidence
    "case_recordings",
    metadata,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True),
    Column("recording_id", String(16), ForeignKey("recordings.id"), primary_key=True, index=True),
    Column("linked_at", UTCDateTime, nullable=False),
    Column("linked_by", String(160), nullable=False),
)

labels = Table(  # R2/R3 labels of a recording; the original's bytes are never touched
    "labels",
    metadata,
    Column("recording_id", String(16), ForeignKey("recordings.id"), primary_key=True),
    Column("case_number", String(128)),
    Column("party", Text),  # 行政相对人
    Column("handler", String(128)),  # 承办人
    Column("making_method", Text),  # null: the recording's own (from the device)
    Column("maker", String(128)),  # null: the recording's own (the officer)
    Column("making_time", UTCDateTime),  # null: recorded_start
    Column("proves", Text),  # 证明对象
    Column("description", Text),  # 文字说明 (required for audio)
    Column("labelled_at", UTCDateTime),  # when the R2 fields were first all filled
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(160), nullable=False),
)

retention_classes = Table(  # a recording's retention class, when one was set (else: unclassified)
    "retention_classes",
    metadata,
    Column("recording_id", String(16), ForeignKey("recordings.id"), primary_key=True),
    Column("class_name", String(64), nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
    Column("set_by", String(160), nullable=False),
    Column("change_id", String(16)),  # the approved class change that set it, when one was needed
)

class_changes = Table(  # a request to move a recording to a shorter class: a supervisor approves
    "class_changes",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("recording_id", String(16), ForeignKey("recordings.id"), nullable=False, index=True),
    Column("from_class", String(64), nullable=False),
    Column("to_class", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_by", String(160), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved | denied
    Column("decided_by", String(160)),
    Column("decided_at", UTCDateTime),
)

holds = Table(  # R6 long-term keeping: a hold blocks every purge
    "holds",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("recording_id", String(16), ForeignKey("recordings.id"), index=True),
    Column("case_id", Integer, ForeignKey("cases.id"), index=True),
    Column("reason", String(32), nullable=False),  # coercive-measure | dispute | ... | other
    Column("note", Text),
    Column("set_by", String(160), nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
    Column("released_by", String(160)),
    Column("released_at", UTCDateTime),
    Column("release_note", Text),
)

purge_batches = Table(
    "purge_batches",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(160), nullable=False),
    Column("status", String(16), nullable=False),  # open | purged | cancelled
    Column("purged_at", UTCDateTime),
    Column("purged_by", String(160)),
)

purge_items = Table(
    "purge_items",
    metadata,
    Column("batch_id", String(16), ForeignKey("purge_batches.id"), primary_key=True),
    Column("recording_id", String(16), ForeignKey("recordings.id"), primary_key=True, index=True),
    Column("class_name", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("why", Text, nullable=False),
)

purge_approvals = Table(
    "purge_approvals",
    metadata,
    Column("batch_id", String(16), ForeignKey("purge_batches.id"), primary_key=True),
    Column("approver", String(160), primary_key=True),  # a named user; two distinct ones by default
    Column("approved_at", UTCDateTime, nullable=False),
)

tombstones = Table(  # what remains of a purged original: all its metadata and its hash
    "tombstones",
    metadata,
    Column("recording_id", String(16), ForeignKey("recordings.id"), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("batch_id", String(16), ForeignKey("purge_batches.id"), nullable=False),
    Column("class_name", String(64), nullable=False),
    Column("purged_at", UTCDateTime, nullable=False, index=True),
    Column("purged_by", String(160), nullable=False),
    Column("approvers", Text, nullable=False),  # JSON list
    Column("snapshot", Text, nullable=False),  # JSON: the recording, its labels and cases
    Column("audit_index", BigInteger),  # the retention.purge.done entry (in the signed log)
)

# -- compliance: trips, scrub schedule, spot checks (#6; migration 0010) --------

trips = Table(  # R1 off-site exception: the upload deadline moves to return + 24 h
    "trips",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("officer_number", String(32), index=True),  # an officer's trip, or
    Column("device_serial", String(64), index=True),  # a device's (at least one is set)
    Column("left_at", UTCDateTime, nullable=False),
    Column("returned_at", UTCDateTime),  # null: still away
    Column("note", Text, nullable=False),
    Column("recorded_by", String(160), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

late_reasons = Table(  # why a recording reached the vault after its deadline (R1)
    "late_reasons",
    metadata,
    Column("recording_id", String(16), ForeignKey("recordings.id"), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("entered_by", String(160), nullable=False),
    Column("entered_at", UTCDateTime, nullable=False),
)

interruption_notes = Table(  # R12: a note on the gap before a clip, keyed by the clip after it
    "interruption_notes",
    metadata,
    Column("after_id", String(16), ForeignKey("recordings.id"), primary_key=True),
    Column("before_id", String(16), ForeignKey("recordings.id"), nullable=False),
    Column("note", Text, nullable=False),
    Column("noted_by", String(160), nullable=False),
    Column("noted_at", UTCDateTime, nullable=False),
)

scrub_state = Table(  # where the background scrub stands: one row
    "scrub_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("round", Integer, nullable=False),
    Column("round_started_at", UTCDateTime, nullable=False),
    Column("round_finished_at", UTCDateTime),
    Column("cursor_at", UTCDateTime),  # the last checked recording's (ingested_at, id)
    Column("cursor_id", String(16)),
    Column("files_done", Integer, nullable=False),
    Column("bytes_done", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

Index("ix_recordings_ingested_id", recordings.c.ingested_at, recordings.c.id)  # the scrub's order

spot_checks = Table(  # R10: a reproducible random sample drawn by the legal office
    "spot_checks",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("drawn_at", UTCDateTime, nullable=False),
    Column("drawn_by", String(160), nullable=False),
    Column("seed", String(64), nullable=False),
    Column("percent", Float, nullable=False),
    Column("unit", String(128)),
    Column("since", UTCDateTime),
    Column("until", UTCDateTime),
    Column("population", Integer, nullable=False),
    Column("sample_size", Integer, nullable=False),
)

spot_check_items = Table(
    "spot_check_items",
    metadata,
    Column("check_id", String(16), ForeignKey("spot_checks.id"), primary_key=True),
    Column("recording_id", String(16), ForeignKey("recordings.id"), primary_key=True),
    Column("position", Integer, nullable=False),
)

spot_check_findings = Table(  # one row per finding; a later one on the same item supersedes
    "spot_check_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check_id", String(16), ForeignKey("spot_checks.id"), nullable=False, index=True),
    Column("recording_id", String(16), ForeignKey("recordings.id"), nullable=False),
    Column("item", String(32), nullable=False),  # recorded | uninterrupted | on-time | labelled | access
    Column("result", String(8), nullable=False),  # pass | fail | n/a
    Column("note", Text, nullable=False),
    Column("found_by", String(160), nullable=False),
    Column("found_at", UTCDateTime, nullable=False),
)

# -- previews and their job queue (#7; migration 0011) ---------------------------

previews = Table(  # the current preview of a recording: derived data, deletable, never evidence
    "previews",
    metadata,
    Column("recording_id", String(16), ForeignKey("recordings.id"), primary_key=True),
    Column("state", String(16), nullable=False),  # stills | partial (first part only) | ready
    Column("kind", String(8), nullable=False),  # video | audio | photo
    Column("main_file", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),  # of the main file
    Column("size_bytes", BigInteger, nullable=False),  # all its files
    Column("files", Text, nullable=False),  # JSON: name -> {sha256, size_bytes, role}
    Column("original_sha256", String(64), nullable=False),
    Column("tools", Text, nullable=False),  # JSON: ffmpeg -version first lines
    Column("params", Text, nullable=False),  # JSON: the exact parameters and command lines
    Column("incomplete", Boolean, nullable=False),  # made from what a damaged original let be read
    Column("problems", Text, nullable=False),  # what ffmpeg complained about
    Column("made_at", UTCDateTime, nullable=False),
    Column("seconds", Float, nullable=False),
)

preview_jobs = Table(  # the persistent queue: one job per recording
    "preview_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recording_id", String(16), ForeignKey("recordings.id"), nullable=False, unique=True),
    Column("priority", Integer, nullable=False),  # higher first: on-demand > new ingest > backlog
    Column("state", String(16), nullable=False),  # queued | running | done | failed
    Column("attempts", Integer, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("first_part", Boolean, nullable=False),  # someone is waiting: make the first part first
    Column("last_error", Text),
    Column("requested_by", String(160), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("worker", String(64)),
    Index("ix_preview_jobs_next", "state", "priority", "not_before", "id"),
)

# -- signed exports (#8; migration 0012) ------------------------------------------

exports = Table(  # what left the vault, to whom, and the package's tagmanifest hash (R7)
    "exports",
    metadata,
    Column("id", String(32), primary_key=True),  # e.g. EXP-20261121-1a2b3c
    Column("status", String(16), nullable=False),  # building | complete | failed
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("maker", String(160), nullable=False),  # actor label of who made it
    Column("grant_id", String(16), nullable=False),
    Column("requester", String(128), nullable=False),  # the grantee
    Column("approver", String(128), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("case_number", String(128)),
    Column("recording_ids", Text, nullable=False),  # JSON list
    Column("out_path", Text, nullable=False),
    Column("packages", Text, nullable=False),  # JSON: [{path, tagmanifest_sha256, payload_bytes, files, iso}]
    Column("payload_bytes", BigInteger, nullable=False),
    Column("checkpoint_size", BigInteger),  # the log checkpoint the package carries
    Column("entry_index", BigInteger),  # its export.created audit entry
    Column("problem", Text),
)
