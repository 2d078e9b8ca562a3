"""Making one preview with ffmpeg (#7): what a job asks for (``Task``), what comes
out (``Made``), and the protocol between the queue and ffmpeg (``Maker``).

``FfmpegMaker`` is the real maker; it decides nothing about the queue and calls
ffmpeg only through ``vaultd.media``. Tests of the queue pass a fake maker that
implements the same protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from vaultd import media
from vaultd.config import PreviewConfig
from vaultd.errors import VaultError
from vaultd.i18n import _
from vaultd.media import MediaToolError, VideoSpec
from vaultd.model import Recording
from vaultd.preview import encoder_for, kind_of, output_height, sprite_layout, strip_text

log = logging.getLogger(__name__)

SPRITE_TILE_HEIGHT = 90
WAVEFORM_SIZE = (1280, 240)


class UnreadableError(VaultError):
    """The original cannot be read at all: trying again will not help."""

    code = "preview_unreadable"


@dataclass(frozen=True)
class Task:
    recording: Recording
    original: Path
    work: Path  # an empty folder for the files
    part: str  # "first" (the first seconds, at once) | "full"
    config: PreviewConfig
    tz: ZoneInfo
    timeout_s: float
    low_priority: bool = True  # False for the first part a person is waiting for
    threads: int = 0  # ffmpeg threads for the video; 0: ffmpeg's choice


@dataclass(frozen=True)
class Made:
    kind: str  # video | audio | photo
    main_file: str
    files: dict[str, str]  # file name -> role
    params: dict[str, Any]
    incomplete: bool = False
    problems: str = ""


class Maker(Protocol):
    def tools(self) -> dict[str, str]: ...

    def make(self, task: Task) -> Made: ...


# -- the real maker ------------------------------------------------------------------

class FfmpegMaker:
    """Makes previews with ffmpeg (through vaultd.media). ``encoder`` overrides the
    choice ``[preview] encoder`` makes on this machine."""

    def __init__(self, encoder: media.Encoder | None = None) -> None:
        self.encoder = encoder

    def tools(self) -> dict[str, str]:
        return media.tool_versions()

    def make(self, task: Task) -> Made:
        info = media.probe(task.original)
        if not info.ok:
            raise UnreadableError(_("the original cannot be read: %s") % info.error)
        kind = kind_of(task.recording)
        if kind == "video" and info.video_codec is None and info.audio_codec is not None:
            kind = "audio"
        if kind in ("video", "photo") and info.video_codec is None:
            raise UnreadableError(_("the original has no readable picture"))
        if kind == "audio" and info.audio_codec is None:
            raise UnreadableError(_("the original has no readable sound"))
        if kind == "video":
            made = self._video(task, info)
        elif kind == "audio":
            made = self._audio(task)
        else:
            made = self._photo(task)
        return made

    def _marking(self, task: Task) -> tuple[str | None, bool, str]:
        font, cjk = media.find_font(task.config.font_file)
        if not media.can_mark():
            log.warning("ffmpeg cannot draw text here: previews carry the marking only in their metadata")
            return None, False, "metadata-only"
        if not cjk:
            log.warning("no font with CJK glyphs (install fonts-wqy-microhei): the strip is latin only")
        return font, cjk, "cjk" if cjk else "latin-only"

    def _video(self, task: Task, info: media.ProbeResult) -> Made:
        if task.part == "stills":
            return self._stills_only(task, info)
        cfg, rec, first = task.config, task.recording, task.part == "first"
        font, cjk, marking = self._marking(task)
        encoder, why = (self.encoder, "given") if self.encoder else encoder_for(cfg)
        spec = VideoSpec(
            height=output_height(info.height, cfg.height), fps=cfg.fps,
            preset="ultrafast" if first else cfg.preset, crf=cfg.crf, audio_kbps=cfg.audio_kbps,
            encoder=encoder, has_audio=info.audio_codec is not None,
            strip=strip_text(rec, task.tz, cjk=cjk, clock=True) if marking != "metadata-only" else "",
            font_file=font, duration_s=cfg.first_part_s if first else None, threads=task.threads,
            x264_params="" if first else cfg.x264_params,  # the quick part: ultrafast as it is
            audio_copy=cfg.audio_copy and info.audio_codec == "aac")  # MP4 takes AAC as it is
        name = "first.mp4" if first else "video.mp4"
        params: dict[str, Any] = {"marking": marking, "encoder_reason": why}
        ran = self._encode(task, spec, name, params)
        files = {name: "first-part" if first else "video"}
        problems = [ran.complaints] if ran.complaints else []
        out = media.probe(task.work / name)
        if not out.ok or not out.duration_s or out.video_codec is None:
            raise MediaToolError(_("the preview came out unplayable: %s") % (out.error or _("no picture")))
        params["duration_s"] = out.duration_s
        if not first:
            problems += self._stills(task, info, spec, files, params)
        incomplete = rec.damaged or bool(ran.complaints) or (
            bool(info.duration_s) and not first and out.duration_s < 0.9 * (info.duration_s or 0))
        return Made("video", name, files, params, incomplete, "; ".join(p for p in problems if p))

    def _stills_only(self, task: Task, info: media.ProbeResult) -> Made:
        """The cheap part first: poster and sprite (keyframes only), before the encode."""
        font, cjk, marking = self._marking(task)
        spec = VideoSpec(
            height=output_height(info.height, task.config.height), fps=0, preset="", crf=0, audio_kbps=0,
            encoder=media.Encoder("libx264"), has_audio=False,
            strip="-" if marking != "metadata-only" else "", font_file=font)
        files: dict[str, str] = {}
        params: dict[str, Any] = {"marking": marking, "argv": {}}
        problems = self._stills(task, info, spec, files, params)
        if not files:
            raise MediaToolError(_("no keyframe could be read: %s") % "; ".join(problems))
        main = "poster.jpg" if "poster.jpg" in files else next(iter(files))
        return Made("video", main, files, params, task.recording.damaged, "; ".join(problems))

    def _encode(self, task: Task, spec: VideoSpec, name: str, params: dict[str, Any]) -> media.Ran:
        try:
            ran = media.make_preview_video(task.original, task.work / name, spec, task.work,
                                           timeout_s=task.timeout_s, low_priority=task.low_priority)
        except MediaToolError as exc:
            if not spec.encoder.hardware:
                raise
            log.warning("hardware encoder %s failed (%s); using libx264", spec.encoder.name, exc.message)
            params["fallback"] = f"{spec.encoder.name} failed: {exc.message}"
            spec = VideoSpec(**{**spec.__dict__, "encoder": media.Encoder("libx264")})
            ran = media.make_preview_video(task.original, task.work / name, spec, task.work,
                                           timeout_s=task.timeout_s, low_priority=task.low_priority)
        params.update(spec=spec.as_dict(), argv={name: list(ran.argv)})
        return ran

    def _stills(self, task: Task, info: media.ProbeResult, spec: VideoSpec, files: dict[str, str],
                params: dict[str, Any]) -> list[str]:
        """Poster and sprite: cheap (keyframes only); a damaged clip may lack them, the video stays."""
        problems: list[str] = []
        every, count, columns = sprite_layout(info.duration_s, task.config.sprite_every_s)
        at_s = min(5.0, (info.duration_s or 0.0) / 10) if (info.duration_s or 0.0) >= 20 else 0.0
        poster_strip = strip_text(task.recording, task.tz, cjk=params["marking"] == "cjk", clock=False)
        jobs: dict[str, Callable[[Path], media.Ran]] = {
            "poster.jpg": lambda out: media.make_poster(
                task.original, out, height=spec.height, at_s=at_s,
                strip=poster_strip if spec.strip else "", font_file=spec.font_file, work=task.work,
                timeout_s=task.timeout_s, low_priority=task.low_priority),
            "sprite.jpg": lambda out: media.make_sprite(
                task.original, out, every_s=every, count=count, columns=columns,
                tile_height=SPRITE_TILE_HEIGHT, timeout_s=task.timeout_s, low_priority=task.low_priority),
        }
        for name, job in jobs.items():
            try:
                ran = job(task.work / name)
            except MediaToolError as exc:
                problems.append(f"{name}: {exc.message}")
                (task.work / name).unlink(missing_ok=True)
                continue
            files[name] = name.split(".")[0]
            params["argv"][name] = list(ran.argv)
        params["poster"] = {"at_s": at_s, "strip": poster_strip if spec.strip else ""}
        params["sprite"] = {"every_s": every, "count": count, "columns": columns,
                            "tile_height": SPRITE_TILE_HEIGHT}
        return problems

    def _audio(self, task: Task) -> Made:
        cfg = task.config
        font, cjk, marking = self._marking(task)
        ran = media.make_preview_audio(task.original, task.work / "audio.m4a", kbps=cfg.audio_kbps,
                                       timeout_s=task.timeout_s, low_priority=task.low_priority)
        files = {"audio.m4a": "audio"}
        params: dict[str, Any] = {"marking": marking, "audio_kbps": cfg.audio_kbps,
                                  "argv": {"audio.m4a": list(ran.argv)}}
        problems = [ran.complaints] if ran.complaints else []
        strip = strip_text(task.recording, task.tz, cjk=cjk, clock=False) if marking != "metadata-only" else ""
        try:
            wave = media.make_waveform(task.original, task.work / "waveform.png", width=WAVEFORM_SIZE[0],
                                       height=WAVEFORM_SIZE[1], strip=strip, font_file=font, work=task.work,
                                       timeout_s=task.timeout_s, low_priority=task.low_priority)
            files["waveform.png"] = "waveform"
            params["argv"]["waveform.png"] = list(wave.argv)
        except MediaToolError as exc:
            problems.append(f"waveform.png: {exc.message}")
        return Made("audio", "audio.m4a", files, params, task.recording.damaged or bool(ran.complaints),
                    "; ".join(problems))

    def _photo(self, task: Task) -> Made:
        cfg = task.config
        font, cjk, marking = self._marking(task)
        strip = strip_text(task.recording, task.tz, cjk=cjk, clock=False) if marking != "metadata-only" else ""
        ran = media.make_preview_photo(task.original, task.work / "photo.jpg", height=cfg.photo_height,
                                       strip=strip, font_file=font, work=task.work, timeout_s=task.timeout_s,
                                       low_priority=task.low_priority)
        params = {"marking": marking, "photo_height": cfg.photo_height, "strip": strip,
                  "argv": {"photo.jpg": list(ran.argv)}}
        return Made("photo", "photo.jpg", {"photo.jpg": "photo"}, params,
                    task.recording.damaged or bool(ran.complaints), ran.complaints)
