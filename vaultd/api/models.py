"""What the HTTP API accepts and returns, as pydantic models.

They exist so that the OpenAPI schema is precise; the values themselves come
from the service layer and ``vaultd.views``. Text fields refuse lone
surrogates (JSON can carry them, UTF-8 cannot), so they fail as 422 here
instead of deep inside the database driver.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from vaultd.access import Level, RequestKind, Role
from vaultd.model import MediaType

MAX_DAYS = 3650


def _utf8(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


_Utf8 = AfterValidator(_utf8)
Name = Annotated[str, Field(min_length=1, max_length=200), _Utf8]
Short = Annotated[str, Field(max_length=200), _Utf8]
Long = Annotated[str, Field(max_length=4000), _Utf8]
Secret = Annotated[str, Field(max_length=1024), _Utf8]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors and health --------------------------------------------------------------

class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. access_denied, not_found")
    message: str
    hint: str | None = None
    rule: str | None = Field(None, description="the access rule that decided a refusal (403)")
    details: list[dict[str, Any]] | None = Field(None, description="what failed validation (422)")


class ErrorOut(BaseModel):
    error: ErrorDetail


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str


# -- login and tokens -------------------------------------------------------------

class LoginIn(_In):
    name: Name
    password: Secret
    expires_days: int = Field(30, ge=1, le=MAX_DAYS)


class TokenIn(_In):
    user: Name
    expires_days: int = Field(30, ge=1, le=MAX_DAYS)


class TokenOut(BaseModel):
    token: str = Field(description="the bearer secret; shown once, stored only as a hash")
    id: str
    expires_at: datetime


# -- users and devices ------------------------------------------------------------

class UserIn(_In):
    name: Name
    role: list[Role] = Field(min_length=1, max_length=len(Role))
    unit: Short | None = None
    officer_number: Short | None = None
    clearance: Level = Level.NORMAL
    password: Secret | None = Field(None, description="none: a token-only service user")
    display_name: Short | None = None


class UserOut(BaseModel):
    name: str
    display_name: str | None = None
    label: str = Field("", description="how lists and documents name the person: display name, 警号, unit")
    roles: list[str]
    unit: str | None
    officer_number: str | None
    clearance: str
    created_at: datetime
    disabled_at: datetime | None
    pending_roles: list[str] = Field([], description="given, not in force until a leader or a second admin approves")


class UserList(BaseModel):
    items: list[UserOut]


class UserEditIn(_In):
    """Only the fields given change; '' clears unit, officer_number or display_name."""
    role: list[Role] | None = Field(None, min_length=1, max_length=len(Role))
    unit: Short | None = None
    officer_number: Short | None = None
    clearance: Level | None = None
    display_name: Short | None = None


class UnlockOut(BaseModel):
    name: str
    failures_cleared: int


class TokenInfo(BaseModel):
    """A token without its secret."""
    id: str
    user: str
    user_label: str
    origin: str | None = Field(description="login (password sign-in), own (made with one's own token), "
                                           "service (an admin, for a service user)")
    state: Literal["live", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class TokenList(BaseModel):
    items: list[TokenInfo]


class ReassignIn(_In):
    unit: Name
    reason: Long = Field(min_length=1)
    recording: Short | None = None
    officer: Short | None = None
    since: datetime | None = None
    until: datetime | None = None


class MovedOut(BaseModel):
    recording_id: str
    unit_before: str | None
    unit_after: str


class ReassignOut(BaseModel):
    items: list[MovedOut]


class DisabledOut(BaseModel):
    name: str
    disabled: Literal[True]


class AssignIn(_In):
    officer_number: Name


class AssignOut(BaseModel):
    device_serial: str
    officer_number: str


# -- recordings ---------------------------------------------------------------------

class RecordingOut(BaseModel):
    """``vaultd.views.recording_json``: times in the station's zone."""

    id: str
    sha256: str
    size_bytes: int
    original_name: str
    original_name_raw_hex: str
    name_oddities: list[str]
    source_path: str
    media_type: MediaType
    device_serial: str | None
    device_model: str | None
    officer_id: str | None
    officer_name: str | None = Field(None, description="the officer as people read it: '王小明 (警号 012345, 一大队)'")
    recorded_start: datetime | None
    recorded_end: datetime | None
    time_source: str
    clock_offset_s: float | None
    time_flags: list[str]
    ingested_at: datetime
    ingest_deadline: datetime | None
    on_time: bool | None
    duration_s: float | None
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    damaged: bool
    damage_reasons: list[str]
    important: bool
    making_method: str
    maker: str | None
    ingest_session: str
    unit: str | None
    confidentiality: Level = Field(description="R9: the level that applies, the highest of its own and its cases'")
    own_confidentiality: Level = Field(description="the recording's own level (recordings confidentiality)")
    case_confidentiality: Level | None = Field(None, description="the highest level of its cases, if any")
    extra: dict[str, Any]


class ConfidentialityIn(_In):
    """R9: a recording's own level, and why it changes (kept in the audit log)."""

    level: Level
    reason: Annotated[str, Field(min_length=1, max_length=4000), _Utf8]


class SightingOut(BaseModel):
    session: str
    device_serial: str | None
    source_path: str
    seen_at: datetime | None
    outcome: str
    wiped_at: datetime | None


class RecordingDetailOut(RecordingOut):
    sightings: list[SightingOut]
    purged: dict[str, Any] | None = Field(None, description="once retention purged the original: when, "
                                                              "batch, class, approvers (its tombstone)")


class RecordingPage(BaseModel):
    items: list[RecordingOut]
    limit: int
    offset: int


# -- access requests and grants -----------------------------------------------------

class RequestIn(_In):
    kind: RequestKind
    recordings: list[Name] = Field([], max_length=1000, description="recording ids (or name a case)")
    case: Name | None = Field(None, description="a case number: asks for its recordings (#6)")
    purpose: Annotated[str, Field(min_length=1, max_length=4000), _Utf8]
    notice: Short | None = Field(None, description="evidence retrieval notice number (调取证据通知书)")
    expires_days: int = Field(7, ge=1, le=365)
    uses: int = Field(1, ge=1, le=1000)

    @model_validator(mode="after")
    def _something_named(self) -> "RequestIn":
        if not self.recordings and not self.case:
            raise ValueError("name at least one recording, or a case")
        return self


class RequestOut(BaseModel):
    id: str
    kind: RequestKind
    requester: str
    requester_unit: str | None
    purpose: str
    notice_number: str | None
    case_number: str | None
    recordings: list[str]
    expires_days: int
    uses: int
    status: Literal["pending", "approved", "denied"]
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    may_decide: bool | None = Field(None, description="in the pending list: may the caller approve or deny it")
    requester_label: str | None = Field(None, description="in the pending list: the requester as people read it "
                                                           "(display name, 警号, unit)")
    rule: str | None = Field(None, description="in the pending list: the rule that says so, e.g. "
                                               "other-department (a leader decides)")


class RequestList(BaseModel):
    items: list[RequestOut]


class DenyIn(_In):
    reason: Annotated[str, Field(min_length=1, max_length=4000), _Utf8]


class GrantOut(BaseModel):
    id: str
    request_id: str
    grantee: str
    kind: RequestKind
    recordings: list[str]
    purpose: str
    expires_at: datetime
    uses_total: int = Field(description="complete copies of EACH recording the grant allows")
    uses_left: int = Field(description="uses left of the recording with the most left (0: all used up)")
    uses_left_by_recording: dict[str, int] = Field(description="uses left per recording")
    approved_by: str
    created_at: datetime


class GrantList(BaseModel):
    items: list[GrantOut]


# -- audit log ---------------------------------------------------------------------

class AuditActor(BaseModel):
    kind: str
    name: str
    via: str


class AuditEvidence(BaseModel):
    id: str
    sha256: str
    size_bytes: int


class AuditEntryOut(BaseModel):
    """One log entry as stored (RFC 8785 JSON), with its index; ``time`` is UTC."""

    index: int
    v: int
    type: str
    time: str
    actor: AuditActor
    evidence: AuditEvidence | None
    prev: int | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryOut]


class AuditHeadOut(BaseModel):
    """The log's size now, and the signed checkpoint the station keeps outside its database."""

    size: int
    outside_checkpoint: str | None = Field(description="C2SP signed note; null when the station keeps none")


class CheckpointOut(BaseModel):
    size: int
    note: str = Field(description="the signed checkpoint (C2SP tlog-checkpoint) as stored")


class CheckpointPage(BaseModel):
    items: list[CheckpointOut]


class RecordingHashOut(BaseModel):
    id: str
    sha256: str


class RecordingHashPage(BaseModel):
    size: int = Field(description="the log size, read in the same snapshot as the items")
    items: list[RecordingHashOut]
