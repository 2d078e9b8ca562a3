"""Signed evidence exports (R5, R7): the service behind ``vaultd export``.

``create_export`` checks the export grant (approved, unexpired, uses left,
naming every recording; refusals are logged), takes one use of each
recording (one copy; given back if the build fails, see docs/grants.md), writes
the audit entries (``export.recording`` per recording and one
``export.created``) and the vault's record of the export in one transaction,
then builds the package: a BagIt bag streamed from the write-once originals
(each read once, hashed with SHA-256 and SHA-512 on the way), per-recording
metadata, the custody chain from the audit log, the cover documents, the CMS
signature over ``tagmanifest-sha256.txt`` and, when a TSA is configured, an
RFC 3161 timestamp over the signature. ``--iso`` adds disc images, one
self-contained bag per disc. The record then gets each package's
tagmanifest hash and an ``export.sealed`` entry; a failed build is recorded
(``export.failed``) and its partial output removed. Originals are never moved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection

from vaultd import access, audit, bag, copies, cover, custody, iso, labels, note, pki, signing, timefmt
from vaultd.access import Action, Principal
from vaultd.approvals import grant_of, ref_of, visible_recording
from vaultd.audit import Event, EvidenceRef
from vaultd.catalog import approvals as appr_db
from vaultd.catalog import exports as db
from vaultd.catalog import labels as labels_db
from vaultd.catalog import people as people_db
from vaultd.catalog import previews as previews_db
from vaultd.catalog.approvals import GrantRow
from vaultd.catalog.exports import ExportRow
from vaultd.catalog.labels import Label
from vaultd.catalog.previews import PreviewRow
from vaultd.errors import AccessDeniedError, ConfigError, HashMismatchError, NotFoundError, UsageError
from vaultd.i18n import _
from vaultd.model import Actor, Progress, Recording
from vaultd.people import actor_of, principal_of, require
from vaultd.safetext import escape
from vaultd.vault import Vault, utcnow
from vaultd.verify import SIGNATURE, TIMESTAMP


@dataclass(frozen=True)
class ExportRequest:
    out_dir: Path
    grant_id: str | None
    recording_refs: tuple[str, ...] = ()
    case_number: str | None = None
    iso: bool = False
    disc: str | None = None  # cd | dvd | bd; None: [export] disc
    disc_bytes: int | None = None  # overrides the disc size (other media, tests)
    with_previews: bool = False


@dataclass(frozen=True)
class ExportResult:
    export: ExportRow
    packages: tuple[Path, ...]
    isos: tuple[Path, ...]


# -- the grant ------------------------------------------------------------------------------

def _refuse(actor: Principal, via: str, grant_id: str | None, recs: Sequence[Recording], rule: str,
            message: str) -> AccessDeniedError:
    return audit.refusal(
        AccessDeniedError(message if f"rule: {rule}" in message else f"{message} (rule: {rule})", rule=rule,
                          hint=_("ask for one: 'vaultd access request --kind export --recording ID ... "
                                 "--purpose ...', approved by a supervisor or leader")),
        Event("access.denied", actor_of(actor, via), {
            "action": Action.EXPORT.value, "rule": rule, "grant": grant_id,
            "recordings": [r.id for r in recs]}))


def check_grant(conn: Connection, actor: Principal, grant_id: str | None, recs: Sequence[Recording],
                via: str, *, export_id: str) -> GrantRow:
    """The export grant, if it allows exporting every one of ``recs`` now; one use of each
    recording is taken for ``export_id`` (given back if the export fails: ``copies.end_export``).

    At the station (the local owner) the grant's grantee is the one checked:
    the owner carries out an export someone asked for and someone approved."""
    if not grant_id:
        raise _refuse(actor, via, None, recs, "no-grant", _("an export needs an approved export grant (--grant)"))
    row = appr_db.get_grant(conn, grant_id)
    if row is None:
        raise _refuse(actor, via, grant_id, recs, "no-grant", _("there is no grant %s") % grant_id)
    subject = actor
    if actor.local_owner:
        user = people_db.user_by_name(conn, row.grantee)
        assert user is not None
        subject = principal_of(user)
    now = utcnow()
    for rec in recs:
        decision = access.decide(subject, Action.EXPORT, recording=ref_of(rec), grants=[grant_of(row)], now=now)
        if not decision.allowed:
            raise _refuse(actor, via, grant_id, recs, decision.rule,
                          _("grant %s does not allow exporting recording %s (rule: %s)")
                          % (grant_id, rec.id, decision.rule))
    used_up = [r.id for r in recs if row.uses_left_by_recording.get(r.id, 0) <= 0]
    if used_up:
        raise _refuse(actor, via, grant_id, recs, "grant-used-up",
                      _("grant %s has no uses left for %s") % (grant_id, ", ".join(used_up)))
    copies.spend_for_export(conn, actor, row, recs, export_id, via)
    return row


def _recordings(conn: Connection, vault: Vault, actor: Principal, req: ExportRequest, via: str) -> list[Recording]:
    refs = list(dict.fromkeys(req.recording_refs))
    if req.case_number and not refs:
        linked = db.case_recording_ids(conn, req.case_number)
        if linked is None:
            raise NotFoundError(_("there is no case %s") % req.case_number, hint=_("'vaultd cases list' shows them"))
        if not linked:
            raise UsageError(_("case %s has no recordings linked") % req.case_number)
        refs = linked
    if not refs:
        raise UsageError(_("name what to export: --case NUMBER or --recording ID (repeatable)"))
    recs = [visible_recording(conn, vault, actor, r, via) for r in refs]
    return list({r.id: r for r in recs}.values())


# -- planning discs ---------------------------------------------------------------------------

def plan_discs(recs: Sequence[Recording], disc_bytes: int | None) -> list[list[Recording]]:
    """Split recordings, in order, into parts that each fit one disc (a file never spans two)."""
    if disc_bytes is None:
        return [list(recs)]
    room = iso.usable_bytes(disc_bytes) - _OVERHEAD_BYTES
    parts: list[list[Recording]] = [[]]
    used = 0
    for rec in recs:
        size = rec.size_bytes + _PER_RECORDING_BYTES
        if size > room:
            raise UsageError(_("recording %s (%d MiB) does not fit on one disc of %d MiB")
                             % (rec.id, rec.size_bytes >> 20, disc_bytes >> 20),
                             hint=_("choose a larger disc: --disc dvd or --disc bd"))
        if used + size > room and parts[-1]:
            parts.append([])
            used = 0
        parts[-1].append(rec)
        used += size
    return parts


_OVERHEAD_BYTES = 4 << 20  # cover, VERIFY.txt, manifests, signature, custody chain
_PER_RECORDING_BYTES = 256 << 10  # metadata and custody per recording


def disc_size(vault: Vault, req: ExportRequest) -> int | None:
    if not req.iso:
        return None
    if req.disc_bytes:
        return req.disc_bytes
    name = req.disc or vault.config.export.disc
    if name not in iso.DISCS:
        raise ConfigError(_("unknown disc size %r") % name, hint=_("use cd, dvd or bd"))
    return iso.DISCS[name]


# -- creating -------------------------------------------------------------------------------

def new_export_id(now: datetime) -> str:
    return f"EXP-{now:%Y%m%d}-{secrets.token_hex(3).upper()}"


def create_export(vault: Vault, actor: Principal, req: ExportRequest, via: str = "cli",
                  progress: Progress | None = None) -> ExportResult:
    """Check the grant, record the export and build its packages (``start_export`` then ``run``)."""
    return start_export(vault, actor, req, via).run(progress)


def start_export(vault: Vault, actor: Principal, req: ExportRequest, via: str = "cli", *,
                 export_id: str | None = None) -> ExportBuild:
    """The checked half of an export: the grant is checked and one use taken, the audit
    entries and the record (status ``building``) written; refusals raise here. The
    returned build writes the packages when ``run`` (at once at the station, on a
    worker thread for the API)."""
    discs = disc_size(vault, req)
    ident = pki.signing_identity(vault.layout.keys_dir, vault.config.export.signing_cert,
                                 vault.config.export.signing_key, vault.config.export.signing_chain)
    if not req.out_dir.is_dir():
        raise UsageError(_("%s is not a folder") % req.out_dir, hint=_("create it first, or choose another --out"))
    now = utcnow()
    export_id = export_id or new_export_id(now)
    with audit.logging_refusals(vault), vault.engine.begin() as conn:
        recs = _recordings(conn, vault, actor, req, via)
        parts = plan_discs(recs, discs)
        grant = check_grant(conn, actor, req.grant_id, recs, via, export_id=export_id)
        maker = actor_of(actor, via)
        indexes = audit.append_many(conn, [
            *[Event("export.recording", maker, {"export": export_id, "grant": grant.id}, EvidenceRef.of(r))
              for r in recs],
            Event("grant.use", maker, {"grant": grant.id, "action": Action.EXPORT.value,
                                       "uses_left": min(grant.uses_left_by_recording[r.id] for r in recs) - 1,
                                       "export": export_id}),
            Event("export.created", maker, {
                "export": export_id, "grant": grant.id, "requester": grant.grantee, "approver": grant.approved_by,
                "purpose": grant.purpose, "case_number": req.case_number, "out": str(req.out_dir),
                "iso": req.iso, "discs": len(parts), "previews": req.with_previews,
                "recordings": [{"id": r.id, "sha256": r.sha256, "size_bytes": r.size_bytes} for r in recs]}),
        ], now)
        db.add(conn, export_id=export_id, at=now, maker=maker.label, grant_id=grant.id, requester=grant.grantee,
               approver=grant.approved_by, purpose=grant.purpose, case_number=req.case_number,
               recording_ids=[r.id for r in recs], out_path=str(req.out_dir),
               payload_bytes=sum(r.size_bytes for r in recs), entry_index=indexes[-1])
        previous = db.last_checkpoint_size(conn)
        found = labels_db.labels_of(conn, [r.id for r in recs])
        who = people_db.directory(conn, vault.config.agency.unit_names)
        shown = {r.id: previews_db.get(conn, r.id) for r in recs} if req.with_previews else {}
    return ExportBuild(vault, export_id, now, grant, req, maker, ident, found, indexes[-1], previous, shown, who,
                       parts)


class BuildHooks(Protocol):
    """What a front end that keeps the packages elsewhere (the API's jobs) does
    while a build runs; anything it raises fails the build like a failed copy."""

    def stage(self, name: str) -> None:
        """Work moves on to ``name`` ("package", "disc-image")."""

    def packaged(self, pkg: Path, record: dict[str, Any]) -> None:
        """One package (and its disc image) is complete and not yet recorded as
        done; ``record`` (what the export record keeps of it) may gain keys."""


def finish_export(vault: Vault, export_id: str, maker: Actor, status: str, records: list[dict[str, Any]],
                  cp_size: int | None, problem: str | None) -> ExportRow:
    """Record how a build ended: ``export.sealed`` with the packages, or ``export.failed``."""
    at = utcnow()
    with vault.engine.begin() as conn:
        db.finish(conn, export_id, at=at, status=status, packages=records, checkpoint_size=cp_size,
                  problem=problem)
        copies.end_export(conn, export_id, ok=status == "complete", maker=maker)
        details: dict[str, Any] = {"export": export_id}
        if status == "complete":
            details["packages"] = [{k: r[k] for k in ("path", "tagmanifest_sha256", "recordings")}
                                   for r in records]
            details["checkpoint_size"] = cp_size
        else:
            details["problem"] = problem
        audit.append(conn, Event("export.sealed" if status == "complete" else "export.failed", maker, details), at)
        row = db.get(conn, export_id)
    assert row is not None
    return row


@dataclass
class ExportBuild:
    vault: Vault
    export_id: str
    now: datetime
    grant: GrantRow
    req: ExportRequest
    maker: Actor
    ident: pki.SigningIdentity
    labels: dict[str, Label]
    entry_index: int
    previous_size: int | None
    previews: dict[str, PreviewRow | None]
    people: people_db.Directory
    parts: list[list[Recording]]

    def person(self, login: str | None) -> str:
        """A person on the documents: display name, 警号 and unit (the unit's configured name)."""
        return escape(self.people.name(login))

    @property
    def made_by(self) -> str:
        if self.maker.kind == "user":
            return self.person(self.maker.name)
        if self.maker.kind == "local":
            return escape(self.maker.name) + "（采集站本机 at the station）"
        return escape(self.maker.label)

    def run(self, progress: Progress | None = None, hooks: BuildHooks | None = None) -> ExportResult:
        parts = self.parts
        made: list[Path] = []
        isos: list[Path] = []
        records: list[dict[str, Any]] = []
        cp_size = None
        if progress:
            progress.begin(sum(len(p) for p in parts), sum(r.size_bytes for p in parts for r in p))
        try:
            for k, part in enumerate(parts, 1):
                name = self.export_id if len(parts) == 1 else f"{self.export_id}-disc{k}of{len(parts)}"
                pkg = self.req.out_dir / name
                made.append(pkg)
                if hooks:
                    hooks.stage("package")
                tag, cp_size, files = self._package(pkg, part, k, len(parts), progress)
                rec: dict[str, Any] = {"path": str(pkg), "tagmanifest_sha256": hashlib.sha256(tag).hexdigest(),
                                       "recordings": [r.id for r in part], "files": files}
                if self.req.iso:
                    if hooks:
                        hooks.stage("disc-image")
                    out = self.req.out_dir / f"{name}.iso"
                    isos.append(out)
                    rec["iso"] = str(out)
                    rec["iso_bytes"] = iso.write_iso(pkg, out, iso.volume_label(self.export_id, k, len(parts)))
                    rec["volume_label"] = iso.volume_label(self.export_id, k, len(parts))
                if hooks:
                    hooks.packaged(pkg, rec)
                records.append(rec)
        except BaseException as exc:
            for path in made:
                shutil.rmtree(path, ignore_errors=True)
            for path in isos:
                path.unlink(missing_ok=True)
            self._finish("failed", [], None, getattr(exc, "message", None) or repr(exc))
            raise
        finally:
            if progress:
                progress.end()
        row = self._finish("complete", records, cp_size, None)
        return ExportResult(row, tuple(made), tuple(isos))

    def _finish(self, status: str, records: list[dict[str, Any]], cp_size: int | None,
                problem: str | None) -> ExportRow:
        return finish_export(self.vault, self.export_id, self.maker, status, records, cp_size, problem)

    # -- one package (one disc) ----------------------------------------------------------

    def _package(self, pkg: Path, part: list[Recording], k: int, n: int,
                 progress: Progress | None) -> tuple[bytes, int, int]:
        cfg = self.vault.config
        tz = timefmt.station_zone(cfg.time.station_tz)
        names = {r.id: _package_name(r) for r in part}
        marks = {r.id: labels.effective(self.labels.get(r.id), r) for r in part}
        ca = self.ident.chain[-1] if self.ident.chain else self.ident.cert
        ca_fp = hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).hexdigest()
        log_key = note.verifier_key_string(audit.verifier(self.vault))
        steps = cover.verify_steps(ca_fp, log_key, bool(cfg.export.tsa_url))
        sheet = self._cover(part, [_cover_file(r, f"data/recordings/{r.id}/{names[r.id]}", marks[r.id], tz,
                                               self.people) for r in part], k, n, steps)
        font = cover.find_font(cfg.export.cover_font)
        w = bag.BagWriter(pkg, cfg.ingest.chunk_bytes)
        # the cover comes from the catalog (each copy is checked against the same hashes below),
        # so the PDF (font parsing and subsetting: seconds) is laid out while the originals copy
        with ThreadPoolExecutor(1, thread_name_prefix="vaultd-cover") as pool:
            pdf = pool.submit(cover.render_pdf, sheet, font)
            for rec in part:
                self._copy_original(w, rec, names[rec.id], marks[rec.id], progress)
            if self.req.with_previews:
                self._add_previews(w, part)
            chain = custody.build(self.vault, [r.id for r in part], [self.entry_index], self.previous_size)
            for rel, data in sorted(chain.files.items()):
                w.add_bytes(rel, data)
            w.add_tag("cover.html", cover.render_html(sheet))
            w.add_tag("cover.pdf", pdf.result())
        w.add_tag("VERIFY.txt", cover.verify_text(self.export_id, escape(cfg.agency_name), ca_fp, log_key, steps))
        w.add_tag("agency-ca.pem", ca.public_bytes(serialization.Encoding.PEM))
        tag = w.finish(self._info(part, k, n, chain.checkpoint_size))
        sig = signing.sign_detached(tag, self.ident)
        (pkg / "signature").mkdir()
        (pkg / SIGNATURE).write_bytes(sig)
        if cfg.export.tsa_url:
            (pkg / TIMESTAMP).write_bytes(signing.request_timestamp(cfg.export.tsa_url, sig, cfg.export.tsa_timeout_s))
        return tag, chain.checkpoint_size, len(w.payload)

    def _copy_original(self, w: bag.BagWriter, rec: Recording, name: str, label: dict[str, object],
                       progress: Progress | None) -> None:
        if progress:
            progress.file(rec.original_name)
        fd = self.vault.store.open_original(rec.sha256)
        try:
            d = w.add_stream(f"data/recordings/{rec.id}/{name}", fd, progress.advance if progress else None)
        finally:
            os.close(fd)
        if d.sha256 != rec.sha256:
            raise HashMismatchError(
                _("original %s does not match its recorded hash; the export stops") % rec.id,
                hint=_("run 'vaultd scrub' and report this to the vault's administrator"))
        w.add_bytes(f"data/recordings/{rec.id}/metadata.json", metadata_json(rec, label, name, d.sha512))

    def _add_previews(self, w: bag.BagWriter, part: list[Recording]) -> None:
        """Previews, apart under data/previews/: derived copies for watching, never evidence."""
        folder = self.vault.config.preview.folder  # as vaultd.preview.root_of (a peer service) puts them
        root = Path(folder) if folder else self.vault.layout.root / "previews"
        missing = []
        for rec in part:
            row = self.previews.get(rec.id)
            if row is None or row.state != "ready" or row.original_sha256 != rec.sha256:
                missing.append(rec.id)
                continue
            for name, about in sorted(row.files.items()):
                fd = os.open(root / rec.id / name, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    d = w.add_stream(f"data/previews/{rec.id}/{bag.safe_name(name)}", fd)
                finally:
                    os.close(fd)
                if d.sha256 != about.get("sha256"):
                    raise HashMismatchError(_("preview file %s of %s changed since it was made") % (name, rec.id),
                                            hint=_("rebuild it: 'vaultd previews rebuild %s'") % rec.id)
            w.add_bytes(f"data/previews/{rec.id}/provenance.json", json.dumps({
                "notice": "预览 PREVIEW: derived for watching, NOT evidence; the original is under data/recordings",
                "recording": rec.id, "original_sha256": row.original_sha256, "files": row.files,
                "tools": row.tools, "params": row.params, "made_at": row.made_at.isoformat(),
                "incomplete": row.incomplete, "problems": row.problems},
                ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n")
        note = ("预览仅供观看，不是证据；原始文件在 data/recordings。\n"
                "Previews are derived copies for watching, NOT evidence; the originals are under data/recordings.\n")
        if missing:
            note += "No ready preview for / 无预览: " + ", ".join(missing) + "\n"
        w.add_bytes("data/previews/README.txt", note.encode("utf-8"))

    def _info(self, part: list[Recording], k: int, n: int, cp_size: int) -> list[tuple[str, str]]:
        """bag-info.txt: people by name, 警号 and unit; times in the station's zone with their offset."""
        tz = timefmt.station_zone(self.vault.config.time.station_tz)
        starts = [r.recorded_start for r in part if r.recorded_start]
        ends = [r.recorded_end for r in part if r.recorded_end]
        return [
            ("Source-Organization", escape(self.vault.config.agency_name) or "-"),
            ("External-Identifier", self.export_id),
            ("Bag-Group-Identifier", self.export_id),
            ("Bag-Count", f"{k} of {n}"),
            ("Bagging-Date", f"{self.now.astimezone(tz):%Y-%m-%d}"),
            ("Case-Number", escape(self.req.case_number or "-")),
            ("Requester", self.person(self.grant.grantee)),
            ("Approver", self.person(self.grant.approved_by)),
            ("Grant", self.grant.id),
            ("Purpose", escape(self.grant.purpose)),
            ("Internal-Sender-Description", escape(self.grant.purpose)),
            ("Made-By", self.made_by),
            ("Made-At", self.now.astimezone(tz).isoformat(timespec="seconds")),
            ("Recordings", str(len(part))),
            ("Recorded-From", min(starts).astimezone(tz).isoformat() if starts else "-"),
            ("Recorded-To", max(ends).astimezone(tz).isoformat() if ends else "-"),
            ("Audit-Log-Checkpoint-Size", str(cp_size)),
            ("Audit-Log-Export-Entry", str(self.entry_index)),
        ]

    def _cover(self, part: list[Recording], files: list[cover.CoverFile], k: int, n: int,
               steps: tuple[cover.VerifyStep, ...]) -> cover.Cover:
        tz = timefmt.station_zone(self.vault.config.time.station_tz)
        return cover.Cover(
            export_id=self.export_id, agency=escape(self.vault.config.agency_name),
            case_number=escape(self.req.case_number or ""), purpose=escape(self.grant.purpose),
            requester=self.person(self.grant.grantee), approver=self.person(self.grant.approved_by),
            grant_id=self.grant.id, made_by=self.made_by,
            made_at=timefmt.format_local(self.now, tz, seconds=True), zone=timefmt.zone_label(tz),
            disc=f"{k} / {n}", files=tuple(files), verify_steps=steps)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def metadata_json(rec: Recording, label: dict[str, object], package_file: str, sha512: str) -> bytes:
    """Every catalog field, the R3 fields and labels, as exported next to the original."""
    doc: dict[str, Any] = {f.name: _json_value(getattr(rec, f.name)) for f in dataclasses.fields(rec)}
    doc["original_name_raw_hex"] = doc.pop("original_name_raw")
    doc["package_file"] = package_file
    doc["sha512"] = sha512
    doc["r3"] = {k: label.get(k) for k in ("making_method", "making_time", "maker", "proves", "description")}
    doc["labels"] = _json_value(label)
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def _package_name(rec: Recording) -> str:
    name = bag.safe_name(rec.original_name)
    return "original-" + name if name == "metadata.json" else name


def _cover_file(rec: Recording, rel: str, label: dict[str, object], tz: ZoneInfo,
                people: people_db.Directory) -> cover.CoverFile:
    """One file's row on the cover: people by name, 警号 and unit; free text (labels, names)
    with control and bidi characters escaped."""
    def local(t: datetime | None) -> str:
        return timefmt.local(t, tz) if t else "?"

    maker = str(label.get("maker") or "?")
    if rec.officer_id and maker == rec.officer_id:  # the default maker: the officer, by 警号
        maker = people.officer(maker)

    return cover.CoverFile(
        path=escape(rel), recording_id=rec.id, size_bytes=rec.size_bytes, duration_s=rec.duration_s,
        recorded=f"{local(rec.recorded_start)} – {local(rec.recorded_end)}", sha256=rec.sha256,
        making_method=escape(label.get("making_method") or rec.making_method),
        making_time=timefmt.format_iso_local(str(label.get("making_time") or ""), tz, missing="?"),
        maker=escape(maker), officer=escape(people.officer(rec.officer_id)),
        proves=escape(label.get("proves") or "（未填写 not entered）", multiline=True), damaged=rec.damaged)


def agency_ca(vault: Vault) -> tuple[bytes, str]:
    """The CA at the top of the signing chain (PEM) and its SHA-256 fingerprint: what to publish and pin."""
    cfg = vault.config.export
    ident = pki.signing_identity(vault.layout.keys_dir, cfg.signing_cert, cfg.signing_key, cfg.signing_chain)
    ca = ident.chain[-1] if ident.chain else ident.cert
    return (ca.public_bytes(serialization.Encoding.PEM),
            hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).hexdigest())


# -- reading the record -----------------------------------------------------------------------------

def list_exports(vault: Vault, actor: Principal, via: str = "cli") -> list[ExportRow]:
    require(vault, actor, Action.READ_AUDIT, via, _("list exports"))
    with vault.engine.connect() as conn:
        return db.all_exports(conn)


def show_export(vault: Vault, actor: Principal, export_id: str, via: str = "cli") -> ExportRow:
    require(vault, actor, Action.READ_AUDIT, via, _("show exports"))
    with vault.engine.connect() as conn:
        row = db.get(conn, export_id)
    if row is None:
        raise NotFoundError(_("there is no export %s") % export_id, hint=_("'vaultd export list' shows them"))
    return row
