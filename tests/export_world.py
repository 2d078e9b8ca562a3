"""A vault with users, ingested recordings and export grants, shared by the export tests."""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

from vaultd import approvals, audit, export, note, people
from vaultd.access import Principal, RequestKind, Role
from vaultd.catalog import people as people_db
from vaultd.catalog import recordings as rec_db
from vaultd.cli import main
from vaultd.ingest import ingest_path
from vaultd.model import Actor, Recording
from vaultd.people import NewUser, local_owner, principal_of
from vaultd.vault import Vault, init_vault, open_vault

CONFIG = """\
[ingest]
settle_s = 0.0
reserve_bytes = 0
defer_retries = 1

[export]
agency = "某市城市管理综合执法局 City Enforcement Bureau"
"""


@dataclass
class World:
    home: Path
    vault: Vault
    recs: list[Recording]
    out: Path

    def who(self, name: str) -> Principal:
        with self.vault.engine.connect() as conn:
            user = people_db.user_by_name(conn, name)
        assert user is not None
        return principal_of(user)

    def grant(self, ids: list[str], uses: int = 1, kind: RequestKind = RequestKind.EXPORT) -> str:
        req = approvals.request_access(self.vault, self.who("li"), kind, ids, "移送法院 court case 2026-017",
                                       notice=None, expires_days=7, uses=uses, via="cli")
        return approvals.approve(self.vault, self.who("sun"), req.id, "cli").id

    def export(self, ids: list[str], grant: str | None, **kw: object) -> export.ExportResult:
        out = self.out / hashlib.sha256(repr((ids, grant, kw)).encode()).hexdigest()[:8]
        out.mkdir()
        req = export.ExportRequest(out_dir=out, grant_id=grant, recording_refs=tuple(ids), **kw)  # type: ignore[arg-type]
        return export.create_export(self.vault, local_owner(), req)

    @property
    def ca(self) -> Path:
        return self.home / "keys" / "agency-ca.pem"

    @property
    def log_key(self) -> str:
        return note.verifier_key_string(audit.verifier(self.vault))


def make_world(base: Path, camera_master: Path, config: str = "") -> World:
    home = base / "home"
    init_vault(home)
    (home / "vaultd.toml").write_text(CONFIG + config, encoding="utf-8")
    vault = open_vault(home)
    owner = local_owner()
    people.add_user(vault, owner, NewUser("wang", (Role.OFFICER,), "一大队", "012345"), None, "cli")
    people.add_user(vault, owner, NewUser("li", (Role.SUPERVISOR,), "一大队", None), None, "cli")
    people.add_user(vault, owner, NewUser("sun", (Role.LEADER,), None, None), None, "cli")
    cam = base / "camera"
    shutil.copytree(camera_master, cam, symlinks=True)
    ingest_path(vault, cam, actor=Actor.local())
    with vault.engine.connect() as conn:
        recs = rec_db.search(conn, rec_db.RecordingFilter())
    out = base / "out"
    out.mkdir()
    return World(home, vault, sorted(recs, key=lambda r: r.original_name), out)


def first_export(world: World) -> export.ExportResult:
    """One export of a video, a photo and the file with a Chinese name."""
    video = next(r for r in world.recs if r.media_type.value == "video" and not r.damaged)
    chinese = next(r for r in world.recs if "现场" in r.original_name)
    ids = [video.id, chinese.id, next(r for r in world.recs if r.damaged).id]
    return world.export(ids, world.grant(ids), case_number="2026-017")



def run_verify(pkg: Path, *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["verify", str(pkg), *args])
    return code, out.getvalue() + err.getvalue()


def pinned(world: World) -> tuple[str, ...]:
    return ("--ca", str(world.ca), "--log-key", world.log_key)
