"""Labels on recordings (R2, R3) and the labelling deadline (R2).

Two pure functions for other services (compliance reports, statistics):

* ``labelling_deadline(ingested_at, working_days, calendar=CHINA, tz=...)``:
  by when a recording must be labelled: the end (24:00, station time) of the
  ``working_days``-th Chinese working day after the day it was ingested
  (``[retention] label_working_days``, 2 by default). Unknown calendar years
  count Monday to Friday (see ``vaultd.workdays``).
* ``missing(label, media_type)`` / ``is_labelled(label, media_type)``: the one
  definition of "labelled", used by label show, compliance, statistics, exports
  and case close alike: the R2 fields (case number, party, handler), what it
  proves (证明对象, R3) and, for audio, the written description (文字说明, R3)
  are all filled. ``Label.labelled_at`` is when that first became true, so a
  label is on time when ``labelled_at <= labelling_deadline(...)``. Rows come
  from ``vaultd.catalog.labels.labels_of(conn, ids)``.

Labels live in their own table: setting one never touches the original's bytes.
Every change is an audit entry ``label.set`` with the old and new values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from vaultd import access, audit
from vaultd.access import Action, Principal
from vaultd.approvals import ref_of, visible_recording
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import labels as db
from vaultd.catalog.labels import TEXT_FIELDS, Label
from vaultd.errors import AccessDeniedError, UsageError
from vaultd.i18n import _
from vaultd.model import MediaType, Recording
from vaultd.people import actor_of
from vaultd.safetext import check_name
from vaultd.vault import Vault, utcnow
from vaultd.workdays import CHINA, WorkCalendar, add_working_days

__all__ = ["Label", "TEXT_FIELDS", "is_labelled", "labelling_deadline", "missing", "missing_for_case", "set_label"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
R2_FIELDS = ("case_number", "party", "handler")
NAME_FIELDS = frozenset(R2_FIELDS) | {"maker"}  # the rest (proves, description, ...) is free text, shown escaped
MAX_FIELD_CHARS = 4000


def labelling_deadline(ingested_at: datetime, working_days: int = 2, calendar: WorkCalendar = CHINA,
                       tz: ZoneInfo = SHANGHAI) -> datetime:
    """End of the ``working_days``-th working day after ``ingested_at``'s day (station zone), in UTC."""
    if ingested_at.tzinfo is None:
        raise ValueError("ingested_at must be timezone-aware")
    local_day = ingested_at.astimezone(tz).date()
    due_day, _known = add_working_days(local_day, working_days, calendar)
    return datetime.combine(due_day + timedelta(days=1), time(0), tz).astimezone(ingested_at.tzinfo)


def _filled(value: str | None) -> bool:
    return bool(value and value.strip())


def required_fields(media_type: MediaType) -> tuple[str, ...]:
    """The label fields a recording of this type needs to count as labelled (R2, R3)."""
    return R2_FIELDS + ("proves",) + (("description",) if media_type is MediaType.AUDIO else ())


def missing(label: Label | None, media_type: MediaType) -> list[str]:
    """The label fields still empty; labelled when none (the one definition, see the module doc)."""
    return [f for f in required_fields(media_type) if label is None or not _filled(getattr(label, f))]


def is_labelled(label: Label | None, media_type: MediaType) -> bool:
    """Labelled: every field :func:`required_fields` names is filled (the one definition)."""
    return not missing(label, media_type)


#: the name case close has always used; the same definition
missing_for_case = missing


def effective(label: Label | None, rec: Recording) -> dict[str, object]:
    """The label as exports and reports show it: method, maker and time default to the recording's."""
    lab = label or Label(rec.id)
    out = lab.values()
    out["making_method"] = lab.making_method or rec.making_method
    out["maker"] = lab.maker or rec.maker or rec.officer_id
    when = lab.making_time or rec.recorded_start
    out["making_time"] = when.isoformat() if when else None
    out["labelled"] = is_labelled(label, rec.media_type)
    out["label_missing"] = missing(label, rec.media_type)
    out["labelled_at"] = lab.labelled_at.isoformat() if lab.labelled_at else None
    return out


def _clean(changes: Mapping[str, object]) -> dict[str, object]:
    known = {f.name for f in fields(Label)} & (set(TEXT_FIELDS) | {"making_time"})
    out: dict[str, object] = {}
    for key, value in changes.items():
        if key not in known:
            raise UsageError(_("unknown label field %s") % key, hint=_("fields: %s") % ", ".join(sorted(known)))
        if isinstance(value, str):
            value = value.strip() or None
            if value is not None and (len(value) > MAX_FIELD_CHARS or "\x00" in value):
                raise UsageError(_("label field %s is too long or contains a NUL character") % key)
            if value is not None and key in NAME_FIELDS:  # names and ids: no control or bidi characters
                check_name(value, _("label field %s") % key)
        elif value is not None and not isinstance(value, datetime):
            raise UsageError(_("label field %s must be text") % key)
        if isinstance(value, datetime) and value.tzinfo is None:
            raise UsageError(_("label field %s needs a time zone") % key)
        out[key] = value
    if not out:
        raise UsageError(_("nothing to change"), hint=_("give at least one field, e.g. --party 张三"))
    return out


def get_label(vault: Vault, actor: Principal, ref: str, via: str = "cli") -> tuple[Recording, Label | None]:
    """A recording's label; reading it is an audit entry (it names the party, 行政相对人)."""
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        rec = visible_recording(conn, vault, actor, ref, via)
        label = db.get(conn, rec.id)
        audit.append(conn, Event("label.show", actor_of(actor, via), {"labelled": is_labelled(label, rec.media_type)},
                                 EvidenceRef.of(rec)))
        return rec, label


def set_label(vault: Vault, actor: Principal, ref: str, changes: Mapping[str, object],
              via: str = "cli") -> Label:
    """Change some of a recording's label fields (``None`` or "" clears one); audited with old and new."""
    wanted = _clean(changes)
    now = utcnow()
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        rec = visible_recording(conn, vault, actor, ref, via)
        decision = access.decide(actor, Action.LABEL, recording=ref_of(rec), now=now)
        if not decision.allowed:
            raise audit.refusal(
                AccessDeniedError(_("%s may not label recording %s (rule: %s)") % (actor.name, rec.id, decision.rule),
                                  rule=decision.rule),
                Event("access.denied", actor_of(actor, via), {"action": Action.LABEL.value, "rule": decision.rule},
                      EvidenceRef.of(rec)))
        old = db.get(conn, rec.id) or Label(rec.id)
        new = replace(old, **wanted, updated_at=now, updated_by=actor_of(actor, via).label)  # type: ignore[arg-type]
        if is_labelled(new, rec.media_type) and new.labelled_at is None:
            new = replace(new, labelled_at=now)
        before, after = old.values(), new.values()
        changed = sorted(k for k in after if before[k] != after[k])
        if not changed:
            return old
        db.put(conn, new)
        audit.append(conn, Event("label.set", actor_of(actor, via), {
            "fields": changed, "old": {k: before[k] for k in changed}, "new": {k: after[k] for k in changed},
            "labelled": is_labelled(new, rec.media_type)}, EvidenceRef.of(rec)), now)
    return new
