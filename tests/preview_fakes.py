"""A preview maker without ffmpeg (implements previewwork.Maker) and helpers for preview tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from vaultd.catalog.schema import audit_entries
from vaultd.media import MediaToolError
from vaultd.previewwork import Made, Task, UnreadableError
from vaultd.vault import Vault

MAIN = {"video": "video.mp4", "audio": "audio.m4a", "photo": "photo.jpg"}


@dataclass
class FakeMaker:
    """Writes small files named like real previews. ``script`` maps a recording id to
    a list of outcomes, one per try of the first part or the whole preview (the poster
    and sprite made first always succeed): "ok", "fail" (a transient error), "unreadable"."""

    script: dict[str, list[str]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (recording id, part)

    def tools(self) -> dict[str, str]:
        return {"ffmpeg": "fake ffmpeg 0.0"}

    def make(self, task: Task) -> Made:
        rec = task.recording
        self.calls.append((rec.id, task.part))
        scripted = self.script.get(rec.id) if task.part != "stills" else None
        outcome = scripted.pop(0) if scripted else "ok"
        if outcome == "fail":
            raise MediaToolError("ffmpeg failed: simulated transient failure")
        if outcome == "unreadable":
            raise UnreadableError("the original cannot be read: moov atom not found")
        kind = rec.media_type.value
        if task.part == "stills":
            (task.work / "poster.jpg").write_bytes(b"\xff\xd8stills poster\xff\xd9")
            return Made(kind, "poster.jpg", {"poster.jpg": "poster"}, {"fake": True, "part": "stills"})
        name = "first.mp4" if task.part == "first" else MAIN[kind]
        (task.work / name).write_bytes(f"{task.part} preview of {rec.id} ".encode() * 50)
        files = {name: "first-part" if task.part == "first" else kind}
        if kind == "video" and task.part == "full":
            (task.work / "poster.jpg").write_bytes(b"\xff\xd8poster\xff\xd9")
            files["poster.jpg"] = "poster"
        return Made(kind, name, files, {"fake": True, "part": task.part})


def logged(vault: Vault, type_: str) -> list[dict[str, Any]]:
    with vault.engine.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.type == type_)
                            .order_by(audit_entries.c.idx)).all()
    return [json.loads(r.entry) for r in rows]


def folder_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()
