"""ffprobe and ffmpeg: the only place vaultd runs them.

``probe`` reads what a media file claims (codecs, size, duration, creation
time) and never raises for bad or hostile media: it reports ``ok=False``
with ffprobe's complaint. ``make_video``, ``make_audio`` and ``make_photo``
generate real test media for the camera simulator and the test suite.

Structure checks that ffprobe misses (truncated MP4s) live in
``vaultd.containers``, which is pure Python.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import secrets
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ffmpeg  # type: ignore[import-untyped]

from vaultd.errors import ConfigError, VaultError
from vaultd.i18n import _

log = logging.getLogger(__name__)

__all__ = [
    "PREVIEW_MARK",
    "Encoder",
    "MediaToolError",
    "Ran",
    "VideoSpec",
    "available_encoders",
    "find_font",
    "make_poster",
    "make_preview_audio",
    "make_preview_photo",
    "make_preview_video",
    "make_sprite",
    "make_waveform",
    "ProbeResult",
    "make_audio",
    "make_photo",
    "make_video",
    "probe",
    "tool_versions",
]

_STDERR_TAIL_CHARS = 2000
_ERROR_LINE_CHARS = 200
_PROBE_OUTPUT_MAX_BYTES = 16 * 1024 * 1024
_LOG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-fA-F]+\]\s*")
_SAFE_LABEL = re.compile(r"[^A-Za-z0-9 _.#+:/-]")


class MediaToolError(VaultError):
    """ffmpeg failed (or timed out) while generating media."""

    code = "media_tool_error"


@dataclass(frozen=True)
class ProbeResult:
    """What ffprobe says about one file."""

    ok: bool
    error: str | None
    format_name: str | None
    duration_s: float | None
    creation_time: datetime | None
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    raw: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------
# locating the tools


def _install_hint() -> str:
    return _("install ffmpeg: apt-get install ffmpeg")


def _tool(name: str) -> str:
    """Absolute path of ffmpeg/ffprobe, or ConfigError with an install hint."""
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            _("%(tool)s not found on PATH") % {"tool": name}, hint=_install_hint()
        )
    return found


def tool_versions() -> dict[str, str]:
    """First ``-version`` line of ffmpeg and ffprobe (cached for the process)."""
    return dict(_tool_versions())


@functools.cache
def _tool_versions() -> tuple[tuple[str, str], ...]:
    versions: list[tuple[str, str]] = []
    for name in ("ffmpeg", "ffprobe"):
        argv = [_tool(name), "-hide_banner", "-version"]
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(
                _("cannot run %(tool)s: %(error)s") % {"tool": name, "error": exc},
                hint=_install_hint(),
            ) from exc
        text = done.stdout.decode("utf-8", errors="replace").strip()
        versions.append((name, text.splitlines()[0] if text else "unknown"))
    return tuple(versions)


# --------------------------------------------------------------------------
# probe


def probe(path: Path, *, timeout_s: float = 30.0) -> ProbeResult:
    """Run ffprobe on ``path``; never raises for bad media.

    Raises ConfigError only when ffprobe itself is missing.
    """
    argv = [
        _tool("ffprobe"),
        "-hide_banner",
        "-v", "error",
        # containers describe their streams in their headers (MP4 moov, WAV fmt);
        # a smaller probe keeps unreadable files from costing 5 MB of guessing
        "-probesize", "2000000",
        "-analyzeduration", "2000000",
        "-print_format", "json",
        "-show_format",
        "-show_streams",
        # "file:" keeps a name like "http:x" or "-x" from being read as a URL or option
        "file:" + str(Path(path).absolute()),
    ]
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return _failed(_("ffprobe timed out after %(s)s s") % {"s": timeout_s})
    except OSError as exc:
        return _failed(_("cannot run ffprobe: %(error)s") % {"error": exc})
    if done.returncode != 0:
        complaint = _complaint(done.stderr, argv[-1])
        return _failed(complaint or _("ffprobe exited with %(rc)d") % {"rc": done.returncode})
    if len(done.stdout) > _PROBE_OUTPUT_MAX_BYTES:
        return _failed(_("ffprobe output too large"))
    try:
        raw = json.loads(done.stdout.decode("utf-8", errors="replace"))
    except ValueError:
        return _failed(_("ffprobe printed invalid JSON"))
    if not isinstance(raw, dict) or not isinstance(raw.get("format"), dict):
        return _failed(_("ffprobe found no container format"))
    return _from_json(raw)


def _failed(error: str) -> ProbeResult:
    one_line = " ".join(error.split())[:_ERROR_LINE_CHARS]
    return ProbeResult(
        ok=False, error=one_line, format_name=None, duration_s=None, creation_time=None,
        video_codec=None, audio_codec=None, width=None, height=None, raw={},
    )


def _complaint(stderr: bytes, url: str) -> str:
    """The last few distinct stderr lines, without "[mov @ 0x..]" and file-name prefixes."""
    lines: list[str] = []
    for line in stderr.decode("utf-8", errors="replace").splitlines():
        line = _LOG_PREFIX.sub("", line.strip())
        line = line.removeprefix(url + ": ").strip()
        if line and line not in lines:
            lines.append(line)
    return "; ".join(lines[-3:])


def _from_json(raw: dict[str, Any]) -> ProbeResult:
    fmt: dict[str, Any] = raw["format"]
    streams = [s for s in raw.get("streams", []) if isinstance(s, dict)]
    raw = {"format": fmt, "streams": streams}
    video = _first_stream(streams, "video")
    audio = _first_stream(streams, "audio")
    return ProbeResult(
        ok=True,
        error=None,
        format_name=_as_str(fmt.get("format_name")),
        duration_s=_duration(fmt, streams),
        creation_time=_creation_time(fmt, streams),
        video_codec=_as_str(video.get("codec_name")) if video else None,
        audio_codec=_as_str(audio.get("codec_name")) if audio else None,
        width=_as_int(video.get("width")) if video else None,
        height=_as_int(video.get("height")) if video else None,
        raw=raw,
    )


def _first_stream(streams: list[dict[str, Any]], codec_type: str) -> dict[str, Any] | None:
    for stream in streams:
        if stream.get("codec_type") != codec_type:
            continue
        # a JPEG cover picture inside an audio file is not "the video"
        disposition = stream.get("disposition")
        if isinstance(disposition, dict) and disposition.get("attached_pic") == 1:
            continue
        return stream
    return None


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _as_float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def _duration(fmt: dict[str, Any], streams: list[dict[str, Any]]) -> float | None:
    found = _as_float(fmt.get("duration"))
    if found is not None:
        return found
    for stream in streams:
        found = _as_float(stream.get("duration"))
        if found is not None:
            return found
    return None


def _creation_time(fmt: dict[str, Any], streams: list[dict[str, Any]]) -> datetime | None:
    """``creation_time`` tag of the format, else of the first stream that has one.

    A full ISO ``date`` tag (what make_audio writes into WAV's ICRD) is the
    fallback; a bare date is not precise enough and is ignored.
    """
    holders = [fmt, *streams]
    for key, need_time in (("creation_time", False), ("date", True)):
        for holder in holders:
            tags = holder.get("tags")
            if isinstance(tags, dict) and isinstance(tags.get(key), str):
                parsed = _parse_time(tags[key], need_time=need_time)
                if parsed is not None:
                    return parsed
    return None


def _parse_time(text: str, *, need_time: bool) -> datetime | None:
    text = text.strip()
    if need_time and "T" not in text and " " not in text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        if need_time:
            return None
        parsed = parsed.replace(tzinfo=timezone.utc)  # ffmpeg writes UTC
    return parsed.astimezone(timezone.utc)


# --------------------------------------------------------------------------
# generation


def _iso_utc(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("creation_time must be timezone-aware")
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _run_ffmpeg(
    stream: Any, out: Path, *, timeout_s: float, post: Callable[[bytes], bytes] | None = None
) -> None:
    """Compile an ffmpeg-python graph writing to a temp file, run it, rename to ``out``.

    ``post`` rewrites the bytes before the rename (small files only).
    """
    out = Path(out).absolute()
    # ffmpeg creates the file itself, so it gets the usual umask-based mode
    tmp = out.with_name(f".vaultd-{secrets.token_hex(8)}{out.suffix}")
    tmp_name = str(tmp)
    try:
        argv = (
            stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error")
            .overwrite_output()
            .compile(cmd=_tool("ffmpeg"))
        )
        argv = [tmp_name if a == "__OUT__" else a for a in argv]
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise MediaToolError(
                _("ffmpeg timed out after %(s)s s writing %(path)s") % {"s": timeout_s, "path": out}
            ) from exc
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", errors="replace")[-_STDERR_TAIL_CHARS:].strip()
            raise MediaToolError(
                _("ffmpeg failed writing %(path)s: %(stderr)s") % {"path": out, "stderr": tail},
                hint=_("check the ffmpeg build (libx264, aac): ffmpeg -hide_banner -encoders"),
            )
        if post is not None:
            tmp.write_bytes(post(tmp.read_bytes()))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _timeout_for(seconds: float) -> float:
    return 60.0 + 10.0 * seconds


def make_video(
    out: Path,
    *,
    seconds: float,
    creation_time: datetime,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    faststart: bool = True,
    label: str = "",
) -> None:
    """Write a real H.264 + AAC MP4 with a test picture, a sine tone and a creation_time tag.

    ``label`` is drawn on the picture when this ffmpeg can (drawtext needs
    libfreetype and a font); characters outside a safe ASCII set become "_".
    """
    label = _SAFE_LABEL.sub("_", label)[:64].strip()
    if label and not _can_drawtext():
        label = ""
    _make_video(out, seconds, creation_time, (width, height, fps), faststart, label)


@functools.cache
def _can_drawtext() -> bool:
    """Whether drawtext works here (tried once on a one-frame picture)."""
    frame = ffmpeg.input("color=size=32x32:duration=0.04", f="lavfi").video.filter("drawtext", text="x")
    argv = ffmpeg.output(frame, "-", f="null").global_args("-hide_banner", "-nostdin").compile(
        cmd=_tool("ffmpeg")
    )
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if done.returncode != 0:
        log.warning("ffmpeg drawtext unavailable; simulated videos carry no label")
    return done.returncode == 0


def _make_video(
    out: Path,
    seconds: float,
    creation_time: datetime,
    geometry: tuple[int, int, int],
    faststart: bool,
    label: str,
) -> None:
    width, height, fps = geometry
    video = ffmpeg.input(
        f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}", f="lavfi"
    ).video
    if label:
        video = video.filter(
            "drawtext", text=label, expansion="none", x=8, y=8,
            fontsize=max(12, height // 18), fontcolor="white", box=1, boxcolor="black@0.5",
        )
    audio = ffmpeg.input(f"sine=frequency=440:sample_rate=16000:duration={seconds}", f="lavfi").audio
    options: dict[str, Any] = {
        "f": "mp4",
        "vcodec": "libx264",
        "preset": "ultrafast",
        "pix_fmt": "yuv420p",
        "acodec": "aac",
        "ac": 1,
        "b:a": "32k",
        "metadata": "creation_time=" + _iso_utc(creation_time),
    }
    if faststart:
        options["movflags"] = "+faststart"
    stream = ffmpeg.output(video, audio, "__OUT__", **options)
    _run_ffmpeg(stream, out, timeout_s=_timeout_for(seconds))


def make_audio(out: Path, *, seconds: float, creation_time: datetime) -> None:
    """Write a sine-tone recording: WAV (pcm_s16le, mono, 16 kHz) for .wav, else AAC in an M4A container."""
    when = _iso_utc(creation_time)
    audio = ffmpeg.input(f"sine=frequency=660:sample_rate=16000:duration={seconds}", f="lavfi").audio
    if Path(out).suffix.lower() == ".wav":
        # the WAV muxer drops creation_time; "date" lands in the LIST/INFO ICRD chunk
        options: dict[str, Any] = {"f": "wav", "acodec": "pcm_s16le", "ac": 1, "metadata": "date=" + when}
    else:
        options = {"f": "ipod", "acodec": "aac", "ac": 1, "b:a": "32k", "metadata": "creation_time=" + when}
    _run_ffmpeg(ffmpeg.output(audio, "__OUT__", **options), out, timeout_s=_timeout_for(seconds))


def make_photo(out: Path, *, width: int = 1280, height: int = 720, when: datetime | None = None) -> None:
    """Write a JPEG test picture; ``when`` goes into EXIF DateTimeOriginal (+ OffsetTimeOriginal)."""
    picture = ffmpeg.input(f"testsrc=size={width}x{height}:rate=1:duration=1", f="lavfi").video
    stream = ffmpeg.output(picture, "__OUT__", f="image2", vcodec="mjpeg", **{"frames:v": 1, "q:v": 3})
    if when is None:
        _run_ffmpeg(stream, out, timeout_s=_timeout_for(1.0))
        return
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    _run_ffmpeg(stream, out, timeout_s=_timeout_for(1.0), post=lambda jpeg: _with_exif(jpeg, when))


def _with_exif(jpeg: bytes, when: datetime) -> bytes:
    """Insert an APP1 Exif segment with DateTimeOriginal after SOI (and after APP0/JFIF)."""
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}".encode("ascii") + b"\0"
    stamp = when.strftime("%Y:%m:%d %H:%M:%S").encode("ascii") + b"\0"
    # TIFF, big-endian. IFD0 at 8 holds one entry: ExifIFD pointer -> IFD at 26.
    exif_ifd = 26
    data_at = exif_ifd + 2 + 2 * 12 + 4
    tiff = b"MM\0\x2a" + struct.pack(">I", 8)
    tiff += struct.pack(">H", 1) + struct.pack(">HHII", 0x8769, 4, 1, exif_ifd) + struct.pack(">I", 0)
    tiff += struct.pack(">H", 2)
    tiff += struct.pack(">HHII", 0x9003, 2, len(stamp), data_at)
    tiff += struct.pack(">HHII", 0x9011, 2, len(zone), data_at + len(stamp))
    tiff += struct.pack(">I", 0) + stamp + zone
    payload = b"Exif\0\0" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    insert_at = 2
    if jpeg[2:4] == b"\xff\xe0" and len(jpeg) >= 6:
        insert_at = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:insert_at] + segment + jpeg[insert_at:]


# --------------------------------------------------------------------------
# previews (#7): derived copies for watching, never evidence. The decisions
# (which encoder, which sizes, what the strip says) are vaultd.preview's;
# this section only turns them into ffmpeg command lines and runs them.

#: the words every preview carries, burned in and in its metadata
PREVIEW_MARK = "PREVIEW / 预览 - not evidence"
PREVIEW_MARK_LATIN = "PREVIEW - not evidence"
_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


@dataclass(frozen=True)
class Encoder:
    """The H.264 encoder a preview uses: libx264, h264_vaapi (with its render node) or h264_nvenc."""

    name: str
    device: str | None = None

    @property
    def hardware(self) -> bool:
        return self.name != "libx264"


@dataclass(frozen=True)
class VideoSpec:
    """Everything that decides a video preview's bytes (kept as its provenance)."""

    height: int  # output height; never more than the source's
    fps: int  # 0: the source's
    preset: str
    crf: int
    audio_kbps: int
    encoder: Encoder
    has_audio: bool
    strip: str  # drawtext text (expansion=normal: %{pts:...} runs the clock); "" for none
    font_file: str | None
    start_s: float = 0.0
    duration_s: float | None = None  # None: to the end
    threads: int = 0  # decoder and encoder threads; 0: ffmpeg's choice
    x264_params: str = ""  # libx264 options on top of the preset ("key=value:..."); "" for none
    audio_copy: bool = False  # the original's sound as it is (AAC only), else AAC at audio_kbps, mono
    scaler: str = "area"  # swscale flags: area is as cheap as fast_bilinear here and does not alias
    skip_loop_filter: bool = True  # the decoder skips H.264 deblocking: cheaper, invisible at 480p

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["encoder"] = dict(self.encoder.__dict__)
        return out


@dataclass(frozen=True)
class Ran:
    """How an ffmpeg run ended: the command and what it complained about."""

    argv: tuple[str, ...]
    complaints: str  # "" when quiet
    seconds: float


def available_encoders() -> frozenset[str]:
    """Encoder names this ffmpeg was built with (cached)."""
    return _encoders()


@functools.cache
def _encoders() -> frozenset[str]:
    try:
        done = subprocess.run([_tool("ffmpeg"), "-hide_banner", "-encoders"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    names = set()
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def render_nodes() -> tuple[str, ...]:
    """VAAPI render nodes present (``/dev/dri/renderD*``)."""
    return tuple(sorted(str(p) for p in Path("/dev/dri").glob("renderD*")))


def nvidia_present() -> bool:
    return Path("/dev/nvidiactl").exists()


def find_font(configured: str = "") -> tuple[str | None, bool]:
    """(font file, has CJK glyphs). ``configured`` wins when it exists; else a
    known CJK font, else what fontconfig lists for Chinese; else (None, False)."""
    if configured:
        if Path(configured).is_file():
            return configured, True
        log.warning("preview font %s does not exist; looking for another", configured)
    for path in _CJK_FONTS:
        if Path(path).is_file():
            return path, True
    found = _fc_list_zh()
    return (found, True) if found else (None, False)


@functools.cache
def _fc_list_zh() -> str | None:
    tool = shutil.which("fc-list")
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, ":lang=zh", "file"], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        path = line.split(":", 1)[0].strip()
        if path and Path(path).is_file():
            return path
    return None


def can_mark() -> bool:
    """Whether this ffmpeg can burn text in (drawtext: libfreetype)."""
    return _can_drawtext()


def run_prefix(low_priority: bool) -> list[str]:
    """``setpriv --pdeathsig KILL``: ffmpeg dies with the thread that started it (a stopped
    daemon leaves no ffmpeg behind, running or paused); with ``low_priority`` also
    ``nice -n 19 ionice -c 3 chrt --idle 0``: lowest CPU priority, idle I/O class, and the
    SCHED_IDLE policy (whatever of these exists). Under SCHED_IDLE any normal task, ingest's
    threads and the kernel's writeback included, takes the CPU from ffmpeg at once when it
    wakes, and a CPU running only ffmpeg counts as idle when the kernel places it."""
    tools = [("setpriv", ["--pdeathsig", "KILL"])]
    if low_priority:
        tools += [("nice", ["-n", "19"]), ("ionice", ["-c", "3"]), ("chrt", ["--idle", "0"])]
    prefix: list[str] = []
    for name, args in tools:
        found = shutil.which(name)
        if found:
            prefix += [found, *args]
    return prefix


def _src(path: Path) -> str:
    return "file:" + str(Path(path).absolute())


def _strip(stream: Any, text_file: Path | None, font_file: str | None, expand: bool) -> Any:
    """A strip along the bottom; its size follows the picture (about 44 characters per width)."""
    if text_file is None:
        return stream
    options: dict[str, Any] = {"textfile": str(text_file), "expansion": "normal" if expand else "none",
                               "x": 8, "y": "h-th-8", "fontsize": "max(10,min(h/27,w/44))",
                               "fontcolor": "white", "box": 1, "boxcolor": "black@0.6", "boxborderw": 4}
    if font_file:
        options["fontfile"] = font_file
    return stream.filter("drawtext", **options)


def _text_file(work: Path, name: str, text: str) -> Path | None:
    if not text:
        return None
    path = work / name
    path.write_text(text, encoding="utf-8")
    return path


def preview_video_argv(src: Path, out: Path, spec: VideoSpec, work: Path) -> list[str]:
    """The ffmpeg command line of a video preview (benchmarks run it bare)."""
    options: dict[str, Any] = {}
    if spec.start_s > 0:
        options["ss"] = f"{spec.start_s:.3f}"
    if spec.duration_s is not None:
        options["t"] = f"{spec.duration_s:.3f}"
    if spec.threads:
        options["threads"] = spec.threads
    if spec.skip_loop_filter:
        options["skip_loop_filter"] = "all"
    source = ffmpeg.input(_src(src), **options)
    video = source.video
    if spec.fps:  # before scaling: dropped frames are never scaled
        video = video.filter("fps", fps=spec.fps)
    video = video.filter("scale", -2, spec.height, flags=spec.scaler)
    video = _strip(video, _text_file(work, "strip.txt", spec.strip), spec.font_file, True)
    out_opts: dict[str, Any] = {"f": "mp4", "movflags": "+faststart", "map_metadata": -1,
                                "metadata": "comment=" + PREVIEW_MARK}
    enc = spec.encoder
    if enc.name == "h264_vaapi":
        video = video.filter("format", "nv12").filter("hwupload")
        out_opts.update(vcodec="h264_vaapi", qp=spec.crf)
    elif enc.name == "h264_nvenc":
        out_opts.update(vcodec="h264_nvenc", preset="p1", rc="vbr", cq=spec.crf, pix_fmt="yuv420p")
    else:
        out_opts.update(vcodec="libx264", preset=spec.preset, crf=spec.crf, tune="fastdecode",
                        pix_fmt="yuv420p")
        if spec.x264_params:
            out_opts["x264-params"] = spec.x264_params
    if spec.threads:
        out_opts["threads"] = spec.threads
    streams = [video]
    if spec.has_audio:
        streams.append(source.audio)
        if spec.audio_copy:
            out_opts.update(acodec="copy")
        else:
            out_opts.update(acodec="aac", ac=1, **{"b:a": f"{spec.audio_kbps}k"})
    stream = ffmpeg.output(*streams, str(out), **out_opts)
    if enc.name == "h264_vaapi" and enc.device:
        stream = stream.global_args("-vaapi_device", enc.device)
    if spec.threads:
        stream = stream.global_args("-filter_threads", str(spec.threads))
    argv: list[str] = stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error").overwrite_output(
    ).compile(cmd=_tool("ffmpeg"))
    return argv


def make_preview_video(src: Path, out: Path, spec: VideoSpec, work: Path, *, timeout_s: float,
                       low_priority: bool = True) -> Ran:
    """Encode a video preview into ``out`` (a new file in ``work``)."""
    return _run_preview(preview_video_argv(src, out, spec, work), out, timeout_s, low_priority)


def make_poster(src: Path, out: Path, *, height: int, at_s: float, strip: str, font_file: str | None,
                work: Path, timeout_s: float, low_priority: bool = True) -> Ran:
    """The first keyframe at or after ``at_s``, scaled, marked (only keyframes are decoded)."""
    # the first keyframe at or after at_s (only keyframes are decoded; at_s is a few seconds at most)
    source = ffmpeg.input(_src(src), skip_frame="nokey")
    picture = source.video.filter("select", f"gte(t,{max(0.0, at_s):.3f})").filter(
        "scale", -2, height, flags="area")
    picture = _strip(picture, _text_file(work, "poster.txt", strip), font_file, False)
    stream = ffmpeg.output(picture, str(out), f="image2", vcodec="mjpeg", update=1,
                           **{"frames:v": 1, "q:v": 4})
    return _run_preview(_argv(stream), out, timeout_s, low_priority)


def make_sprite(src: Path, out: Path, *, every_s: float, count: int, columns: int, tile_height: int,
                timeout_s: float, low_priority: bool = True) -> Ran:
    """Thumbnails of one keyframe every ``every_s`` seconds in a grid of ``columns`` (keyframes only)."""
    rows = max(1, -(-count // columns))
    # the first keyframe, then the first one at least every_s after the last one taken
    grid = ffmpeg.input(_src(src), skip_frame="nokey").video.filter(
        "select", f"isnan(prev_selected_t)+gte(t-prev_selected_t,{every_s:g})").filter(
        "scale", -2, tile_height, flags="area").filter("tile", f"{columns}x{rows}")
    stream = ffmpeg.output(grid, str(out), f="image2", vcodec="mjpeg", fps_mode="vfr", update=1,
                           **{"frames:v": 1, "q:v": 5})
    return _run_preview(_argv(stream), out, timeout_s, low_priority)


def make_preview_audio(src: Path, out: Path, *, kbps: int, timeout_s: float, low_priority: bool = True) -> Ran:
    """A mono AAC copy in a fast-start M4A, marked in its metadata."""
    audio = ffmpeg.input(_src(src)).audio
    stream = ffmpeg.output(audio, str(out), f="ipod", acodec="aac", ac=1, movflags="+faststart",
                           map_metadata=-1, metadata="comment=" + PREVIEW_MARK, **{"b:a": f"{kbps}k"})
    return _run_preview(_argv(stream), out, timeout_s, low_priority)


def make_waveform(src: Path, out: Path, *, width: int, height: int, strip: str, font_file: str | None,
                  work: Path, timeout_s: float, low_priority: bool = True) -> Ran:
    """A PNG of the waveform (showwavespic), marked."""
    picture = ffmpeg.input(_src(src)).audio.filter("showwavespic", s=f"{width}x{height}", colors="0x3070c0")
    picture = _strip(picture, _text_file(work, "wave.txt", strip), font_file, False)
    stream = ffmpeg.output(picture, str(out), f="image2", vcodec="png", update=1, **{"frames:v": 1})
    return _run_preview(_argv(stream), out, timeout_s, low_priority)


def make_preview_photo(src: Path, out: Path, *, height: int, strip: str, font_file: str | None, work: Path,
                       timeout_s: float, low_priority: bool = True) -> Ran:
    """A downscaled (never upscaled) JPEG with the marking burned in."""
    picture = ffmpeg.input(_src(src)).video.filter("scale", -2, f"min(ih,{height})", flags="bicubic")
    picture = _strip(picture, _text_file(work, "photo.txt", strip), font_file, False)
    stream = ffmpeg.output(picture, str(out), f="image2", vcodec="mjpeg", map_metadata=-1, update=1,
                           **{"frames:v": 1, "q:v": 4})
    return _run_preview(_argv(stream), out, timeout_s, low_priority)


def _argv(stream: Any) -> list[str]:
    argv: list[str] = stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error").overwrite_output(
    ).compile(cmd=_tool("ffmpeg"))
    return argv


class _Background:
    """The low-priority preview processes running in this process, stopped and continued
    together (SIGSTOP/SIGCONT) so that ingest can have the machine.

    ``held``: the daemon's gate says a camera is being ingested; while held (or while the
    processes are stopped) a run's time limit does not count, so a job slowed or stopped
    for ingest never times out because of it. ``paused``: the processes are stopped now
    (outright, or in the stopped part of a duty cycle); ``idle_s`` adds up the time that
    did not count. The price: an ffmpeg that hangs while a camera is ingested is killed
    only once that ingest is over and its limit has run; meanwhile it runs at SCHED_IDLE,
    on CPU that ingest does not want."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen[bytes]] = set()
        self.paused = False
        self.held = False
        self.hold_all = False  # stopped until the ingest ends: start no new run
        self._since: float | None = None  # when the time limits stopped counting
        self._idle_s = 0.0

    def signal_all(self, sig: int) -> None:
        for proc in list(self.procs):
            try:
                proc.send_signal(sig)
            except (ProcessLookupError, OSError):
                pass

    def mark(self) -> None:
        """Call with ``lock`` held after ``paused`` or ``held`` changed."""
        now = time.monotonic()
        if self.paused or self.held:
            if self._since is None:
                self._since = now
        elif self._since is not None:
            self._idle_s += now - self._since
            self._since = None

    def idle_s(self) -> float:
        with self.lock:
            return self._idle_s + (time.monotonic() - self._since if self._since is not None else 0.0)


_BACKGROUND = _Background()


def pause_background() -> None:
    """Stop every low-priority preview ffmpeg of this process where it is (ingest is running)."""
    with _BACKGROUND.lock:
        _BACKGROUND.paused = True
        _BACKGROUND.signal_all(signal.SIGSTOP)
        _BACKGROUND.mark()


def resume_background() -> None:
    with _BACKGROUND.lock:
        _BACKGROUND.paused = False
        _BACKGROUND.signal_all(signal.SIGCONT)
        _BACKGROUND.mark()


def hold_background(held: bool, *, stop_new: bool = False) -> None:
    """The gate: ``held`` while a camera is ingested (time limits do not count);
    ``stop_new``: no new background run may start (previews stopped until ingest ends)."""
    with _BACKGROUND.lock:
        _BACKGROUND.held = held
        _BACKGROUND.hold_all = held and stop_new
        _BACKGROUND.mark()


def release_background() -> None:
    """Everything back to normal: processes continued, no hold (the gate stops)."""
    with _BACKGROUND.lock:
        _BACKGROUND.paused = _BACKGROUND.held = _BACKGROUND.hold_all = False
        _BACKGROUND.signal_all(signal.SIGCONT)
        _BACKGROUND.mark()


def background_paused() -> bool:
    """Whether background previews are stopped until the ingest ends (no new run starts)."""
    return _BACKGROUND.hold_all


def background_held() -> bool:
    """Whether the gate holds background previews back (stopped or throttled) for ingest."""
    return _BACKGROUND.held


def _run_preview(argv: list[str], out: Path, timeout_s: float, low_priority: bool) -> Ran:
    """Run one preview command; raise MediaToolError when it fails or leaves nothing.

    A run that exits non-zero but wrote a usable file (a damaged original
    read as far as it goes) returns with its complaints.
    """
    full = run_prefix(low_priority) + argv
    started = time.monotonic()
    try:
        stderr, returncode = _wait(full, timeout_s, low_priority)
    except OSError as exc:
        raise MediaToolError(_("cannot run ffmpeg: %(error)s") % {"error": exc}) from exc
    complaints = _complaint(stderr, argv[argv.index("-i") + 1] if "-i" in argv else "")
    if returncode != 0 and not _usable(out):
        raise MediaToolError(
            _("ffmpeg failed: %(why)s") % {"why": complaints or _("exit status %d") % returncode},
            hint=_("check the original with 'vaultd recordings show ID'; 'vaultd previews status' "
                   "keeps the error"))
    if not _usable(out):
        raise MediaToolError(_("ffmpeg wrote nothing usable: %(why)s") % {"why": complaints or "-"})
    return Ran(tuple(full), complaints, time.monotonic() - started)


def _wait(argv: list[str], timeout_s: float, pausable: bool) -> tuple[bytes, int]:
    """Run ``argv``; its time limit counts only the time it was neither stopped nor held
    back for ingest (``pausable``)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with _BACKGROUND.lock:
        if pausable:
            _BACKGROUND.procs.add(proc)
            if _BACKGROUND.paused:
                proc.send_signal(signal.SIGSTOP)
    started, idle0 = time.monotonic(), _BACKGROUND.idle_s()
    try:
        while True:
            counted = time.monotonic() - started - (_BACKGROUND.idle_s() - idle0 if pausable else 0.0)
            left = timeout_s - counted
            if left <= 0:
                proc.kill()
                proc.communicate()
                raise MediaToolError(_("ffmpeg timed out after %(s)d s") % {"s": int(timeout_s)})
            try:
                _out, err = proc.communicate(timeout=min(1.0, max(0.01, left)))
                return err or b"", proc.returncode
            except subprocess.TimeoutExpired:
                pass
    finally:
        with _BACKGROUND.lock:
            _BACKGROUND.procs.discard(proc)
        if proc.poll() is None:  # interrupted: never leave a stopped ffmpeg behind
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()


def _usable(out: Path) -> bool:
    try:
        return out.stat().st_size > 0
    except OSError:
        return False
