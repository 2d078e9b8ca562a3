"""Configuration: TOML into typed, validated values, checked once at start.

Lookup order: ``--config FILE``, else ``<home>/vaultd.toml``, else the
built-in defaults. ``config/vaultd.toml`` is the commented reference.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vaultd.errors import ConfigError
from vaultd.i18n import _
from vaultd.safetext import escape, is_unsafe

GiB = 1 << 30
MiB = 1 << 20

#: The common Chinese body-camera name: <serial>_<officer>_<YYYYMMDDhhmmss>_<seq>[_IMP].<ext>
COMMON_NAME_PATTERN = (
    r"^(?P<serial>[A-Za-z0-9]+)_(?P<officer>[A-Za-z0-9]+)_(?P<ts>\d{14})"
    r"_(?P<seq>\d+)(?P<imp>_IMP)?\.[A-Za-z0-9]+$"
)
NAME_GROUPS = frozenset({"serial", "officer", "ts", "seq", "imp"})


@dataclass(frozen=True)
class NamePattern:
    regex: str
    model: str = "*"  # fnmatch pattern on the camera model; "*" = any


@dataclass(frozen=True)
class IngestConfig:
    deadline_hours: float = 24.0
    reserve_bytes: int = 512 * MiB
    max_depth: int = 16
    max_files: int = 100_000
    max_file_bytes: int = 64 * GiB
    max_total_bytes: int = 4096 * GiB
    settle_s: float = 2.0
    defer_retries: int = 2
    chunk_bytes: int = 8 * MiB
    name_patterns: tuple[NamePattern, ...] = (NamePattern(COMMON_NAME_PATTERN),)


@dataclass(frozen=True)
class TimeConfig:
    station_tz: str = "Asia/Shanghai"
    camera_tz: str = "Asia/Shanghai"
    earliest_plausible: str = "2010-01-01"
    max_future_s: float = 300.0
    max_clock_skew_s: float = 30.0


@dataclass(frozen=True)
class CatalogConfig:
    url: str = ""  # empty: SQLite file in the home


@dataclass(frozen=True)
class AuditConfig:
    origin: str = ""  # checkpoint origin line; empty: "vaultd/<vault id>"


@dataclass(frozen=True)
class DockConfig:  # the docking daemon (#5)
    folder: str = ""  # simulated dock: a folder watched for camera trees; empty: none
    udev: bool = True  # follow udev for USB cameras (off: the dock folder only)
    max_sessions: int = 4  # cameras ingested at once
    auto_enroll: bool = False  # ingest unknown cameras (and enroll them) instead of holding them
    wipe: bool = False  # delete files from the camera after a complete, verified ingest
    set_clock: bool = True  # set the camera's clock after ingest where the driver can
    stop_grace_s: float = 60.0  # on SIGTERM, wait this long for in-flight sessions, then abandon them
    api_listen: str = "127.0.0.1:8470"  # the daemon serves the API here; empty: not on TCP
    api_socket: str = ""  # also on this Unix socket; empty: <home>/api.sock
    api_tls_cert: str = ""  # TLS certificate (PEM) for api_listen; with api_tls_key
    api_tls_key: str = ""  # its private key (PEM)
    api_insecure_http: bool = False  # allow plain HTTP on a non-loopback api_listen (not recommended)
    checkpoint_interval_s: float = 3600.0  # how often the audit log is sealed (signed checkpoint)


@dataclass(frozen=True)
class RetentionConfig:  # cases, labels, retention (#6)
    policy_file: str = ""  # empty: <home>/retention.toml if present, else built-in defaults
    label_working_days: int = 2  # R2: label within this many Chinese working days
    purge_approvals: int = 2  # distinct approvers a purge batch needs (1 for small agencies, never 0)
    notify_ahead_days: int = 7  # the scheduled batch is prepared and announced this long before purge
    batch_every_days: int = 7  # how often the scheduled job prepares a batch (weekly)


@dataclass(frozen=True)
class ComplianceConfig:  # compliance, scrub schedule, spot checks (#6)
    scrub_period_days: int = 30
    scrub_interval_min: int = 60  # the daemon runs one scrub step this often
    scrub_budget_s: float = 300.0  # a step starts no new file after this long
    scrub_max_mb_per_s: float = 40.0  # read rate limit of the background scrub (MiB/s)
    dock_overdue_hours: float = 24.0  # an assigned, enrolled camera undocked this long: alert
    gap_threshold_s: float = 60.0  # a longer pause between clips of one device: an interruption
    duty_break_hours: float = 4.0  # a pause this long (or a dock, or another officer) ends a duty period


@dataclass(frozen=True)
class PreviewConfig:  # previews (#7)
    height: int = 480
    fps: int = 15  # 0: the source's frame rate
    preset: str = "veryfast"  # libx264 preset
    crf: int = 28
    x264_params: str = "me=dia:subme=1:partitions=i8x8,i4x4"  # libx264 options on top of the preset; "" for none
    audio_kbps: int = 64
    audio_copy: bool = True  # keep the original's AAC sound as it is (else AAC at audio_kbps, mono)
    photo_height: int = 720
    sprite_every_s: float = 10.0
    first_part_s: float = 10.0  # what "open now" makes first
    encoder: str = "auto"  # auto | software | vaapi | nvenc
    workers: int = 0  # 0: cores - 1, at least 1
    max_attempts: int = 4
    retry_base_s: float = 60.0
    timeout_base_s: float = 120.0
    timeout_per_media_s: float = 2.0
    font_file: str = ""  # empty: find a font with CJK glyphs
    folder: str = ""  # empty: <home>/previews
    poll_s: float = 5.0
    pause_during_ingest: bool = False  # true: background previews stopped outright while a camera is ingested
    ingest_run_pct: int = 100  # else: % of the time background ffmpeg runs while a camera is ingested


@dataclass(frozen=True)
class AgencyConfig:  # who the vault belongs to, named once for every document (#17)
    name: str = ""  # the agency's full name: cover sheets, bag-info Source-Organization, VERIFY.txt, reports
    units: tuple[tuple[str, str], ...] = ()  # unit id (as users and recordings carry it) -> the unit's name

    def unit_name(self, unit: str | None) -> str | None:
        """The unit's configured name, else its id as stored (None stays None)."""
        return dict(self.units).get(unit, unit) if unit else unit

    @property
    def unit_names(self) -> dict[str, str]:
        return dict(self.units)


@dataclass(frozen=True)
class ExportConfig:  # signed exports (#8)
    agency: str = ""  # superseded by [agency] name, still read when that is empty
    signing_cert: str = ""  # an agency PKI certificate (PEM, chain may follow); empty: the one init made
    signing_key: str = ""  # its ECDSA P-256 private key (PEM); set together with signing_cert
    signing_chain: str = ""  # optional PEM file of issuing certificates, nearest first
    tsa_url: str = ""  # RFC 3161 timestamp authority; empty: no timestamp
    tsa_timeout_s: float = 30.0
    disc: str = "dvd"  # --iso default disc size: cd | dvd | bd
    cover_font: str = ""  # a CJK TTF/TTC font for the PDF cover; empty: look for WenQuanYi / Noto CJK
    keep_days: int = 7  # exports built over the API: days their zip/tar and disc images stay downloadable


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    time: TimeConfig = field(default_factory=TimeConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    dock: DockConfig = field(default_factory=DockConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    agency: AgencyConfig = field(default_factory=AgencyConfig)
    source: str = _("built-in defaults")
    text: str = ""  # the file's exact text ("" for defaults), for the audit log

    @property
    def agency_name(self) -> str:
        """The agency's name for documents: ``[agency] name``, else the older ``[export] agency``."""
        return self.agency.name or self.export.agency


_SECTIONS: dict[str, type] = {
    "ingest": IngestConfig, "time": TimeConfig, "catalog": CatalogConfig, "audit": AuditConfig,
    "dock": DockConfig, "retention": RetentionConfig, "compliance": ComplianceConfig,
    "preview": PreviewConfig, "export": ExportConfig, "agency": AgencyConfig,
}


def load(path: Path | None) -> Config:
    """Read and validate ``path``; ``None`` gives the defaults."""
    if path is None:
        return Config()
    try:
        raw = Path(path).read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            _("config file %s does not exist") % path,
            hint=_("pass an existing file with --config, or leave it out for the defaults"),
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(_("%s is not valid TOML: %s") % (path, exc)) from None
    return dataclasses.replace(from_dict(data, str(path)), text=raw.decode("utf-8"))


def from_dict(data: dict[str, Any], source: str) -> Config:
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SECTIONS:
            raise ConfigError(
                _("%s: unknown section [%s]") % (source, name),
                hint=_("allowed sections: %s") % ", ".join(sorted(_SECTIONS)),
            )
        if not isinstance(value, dict):
            raise ConfigError(_("%s: [%s] must be a table") % (source, name))
        sections[name] = _build(_SECTIONS[name], value, source, name)
    cfg = Config(source=source, **sections)
    _check(cfg, source)
    return cfg


def _build(cls: type, values: dict[str, Any], source: str, section: str) -> Any:
    hints = typing.get_type_hints(cls)
    allowed = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{section}.{key}"
        if key not in allowed:
            raise ConfigError(
                _("%s: unknown key %s") % (source, where),
                hint=_("allowed keys in [%s]: %s") % (section, ", ".join(sorted(allowed))),
            )
        kwargs[key] = _coerce(hints[key], value, source, where)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, source: str, where: str) -> Any:
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif hint == tuple[NamePattern, ...]:
        return _name_patterns(value, source, where)
    elif hint == tuple[tuple[str, str], ...]:
        return _units(value, source, where)
    else:  # pragma: no cover - a programming error
        raise TypeError(hint)
    if not ok:
        raise ConfigError(
            _("%s: %s must be a %s, got %r") % (source, where, hint.__name__, value)
        )
    return value


def _name_patterns(value: Any, source: str, where: str) -> tuple[NamePattern, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(_("%s: %s must be a non-empty array of tables") % (source, where))
    out = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, dict) or set(item) - {"regex", "model"} or "regex" not in item:
            raise ConfigError(
                _("%s: %s must be a table with 'regex' and optional 'model'") % (source, here)
            )
        try:
            compiled = re.compile(item["regex"])
        except (re.error, TypeError) as exc:
            raise ConfigError(_("%s: %s.regex is not a valid regex: %s") % (source, here, exc))
        unknown = set(compiled.groupindex) - NAME_GROUPS
        if unknown:
            raise ConfigError(
                _("%s: %s.regex has unknown groups %s") % (source, here, sorted(unknown)),
                hint=_("allowed named groups: %s") % ", ".join(sorted(NAME_GROUPS)),
            )
        out.append(NamePattern(regex=item["regex"], model=str(item.get("model", "*"))))
    return tuple(out)


def _plain_name(value: Any, source: str, where: str) -> str:
    """A name printed on documents: text, not empty, no control or bidi characters."""
    if not isinstance(value, str):
        raise ConfigError(_("%s: %s must be a string, got %r") % (source, where, value))
    if any(is_unsafe(ch) for ch in value):
        raise ConfigError(_("%s: %s contains a control or bidi character: %s") % (source, where, escape(value)),
                          hint=_("names are plain text on one line"))
    if not value.strip() or value != value.strip():
        raise ConfigError(_("%s: %s must not be empty or have spaces around it, got %r") % (source, where, value))
    return value


def _units(value: Any, source: str, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ConfigError(_("%s: %s must be a table of unit id = \"unit name\"") % (source, where),
                          hint=_('e.g. [agency.units] followed by "一大队" = "第一执法大队"'))
    out = []
    for unit, name in value.items():
        here = f"{where}.{unit}"
        _plain_name(unit, source, _("unit id in %s") % where)
        out.append((unit, _plain_name(name, source, here)))
    return tuple(out)


def _check(cfg: Config, source: str) -> None:
    ing = cfg.ingest
    positives = {
        "ingest.deadline_hours": ing.deadline_hours,
        "ingest.max_depth": ing.max_depth,
        "ingest.max_files": ing.max_files,
        "ingest.max_file_bytes": ing.max_file_bytes,
        "ingest.max_total_bytes": ing.max_total_bytes,
        "ingest.chunk_bytes": ing.chunk_bytes,
    }
    for key, value in positives.items():
        if value <= 0:
            raise ConfigError(_("%s: %s must be greater than 0, got %r") % (source, key, value))
    for key, value in {
        "ingest.reserve_bytes": ing.reserve_bytes,
        "ingest.settle_s": ing.settle_s,
        "ingest.defer_retries": ing.defer_retries,
        "time.max_future_s": cfg.time.max_future_s,
        "time.max_clock_skew_s": cfg.time.max_clock_skew_s,
    }.items():
        if value < 0:
            raise ConfigError(_("%s: %s must not be negative, got %r") % (source, key, value))
    comp = cfg.compliance
    for key, value in {"compliance.scrub_period_days": comp.scrub_period_days,
                       "compliance.scrub_interval_min": comp.scrub_interval_min,
                       "compliance.scrub_budget_s": comp.scrub_budget_s,
                       "compliance.scrub_max_mb_per_s": comp.scrub_max_mb_per_s,
                       "compliance.dock_overdue_hours": comp.dock_overdue_hours,
                       "compliance.gap_threshold_s": comp.gap_threshold_s,
                       "compliance.duty_break_hours": comp.duty_break_hours,
                       "export.keep_days": cfg.export.keep_days}.items():
        if value <= 0:
            raise ConfigError(_("%s: %s must be greater than 0, got %r") % (source, key, value))
    origin = cfg.audit.origin
    if origin and (any(c.isspace() for c in origin) or "+" in origin):
        raise ConfigError(_("%s: audit.origin must not contain spaces or '+', got %r") % (source, origin))
    for key in ("station_tz", "camera_tz"):
        name = getattr(cfg.time, key)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                _("%s: time.%s: unknown time zone %r") % (source, key, name),
                hint=_("use an IANA zone name such as Asia/Shanghai"),
            ) from None
    for key, text in (("agency.name", cfg.agency.name), ("export.agency", cfg.export.agency)):
        if text:
            _plain_name(text, source, key)
    _check_retention(cfg.retention, source)
    _check_preview(cfg.preview, source)
    try:
        date.fromisoformat(cfg.time.earliest_plausible)
    except ValueError:
        raise ConfigError(
            _("%s: time.earliest_plausible must be a date YYYY-MM-DD, got %r")
            % (source, cfg.time.earliest_plausible)
        ) from None


def _check_retention(ret: RetentionConfig, source: str) -> None:
    if ret.purge_approvals < 1:
        raise ConfigError(_("%s: retention.purge_approvals must be at least 1, got %r")
                          % (source, ret.purge_approvals),
                          hint=_("2 distinct approvers by default; 1 only for small agencies"))
    for key in ("label_working_days", "batch_every_days"):
        if getattr(ret, key) < 1:
            raise ConfigError(_("%s: retention.%s must be at least 1, got %r") % (source, key, getattr(ret, key)))
    if ret.notify_ahead_days < 0:
        raise ConfigError(_("%s: retention.notify_ahead_days must not be negative, got %r")
                          % (source, ret.notify_ahead_days))


PREVIEW_ENCODERS = ("auto", "software", "vaapi", "nvenc")
PREVIEW_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
_X264_OPTION = r"[a-z0-9][a-z0-9-]*=[A-Za-z0-9.,+-]+"
_X264_PARAMS = re.compile(f"{_X264_OPTION}(:{_X264_OPTION})*")


def _check_preview(pv: PreviewConfig, source: str) -> None:
    def bad(key: str, want: str) -> ConfigError:
        return ConfigError(_("%s: preview.%s must be %s, got %r") % (source, key, want, getattr(pv, key)))

    if not 120 <= pv.height <= 2160 or pv.height % 2:
        raise bad("height", _("an even number of pixels from 120 to 2160"))
    if not 120 <= pv.photo_height <= 4320:
        raise bad("photo_height", _("from 120 to 4320"))
    if not 0 <= pv.fps <= 120:
        raise bad("fps", _("from 0 (the source's) to 120"))
    if not 0 <= pv.crf <= 51:
        raise bad("crf", _("from 0 to 51"))
    if not 8 <= pv.audio_kbps <= 320:
        raise bad("audio_kbps", _("from 8 to 320"))
    if pv.preset not in PREVIEW_PRESETS:
        raise bad("preset", _("one of %s") % ", ".join(PREVIEW_PRESETS))
    if pv.x264_params and not _X264_PARAMS.fullmatch(pv.x264_params):
        raise bad("x264_params", _("empty or key=value pairs joined by ':' (like \"me=dia:subme=1\")"))
    if pv.encoder not in PREVIEW_ENCODERS:
        raise bad("encoder", _("one of %s") % ", ".join(PREVIEW_ENCODERS))
    if not 0 <= pv.ingest_run_pct <= 100:  # (a bool is refused as not an integer already)
        raise bad("ingest_run_pct", _("a whole number from 0 (stopped while ingest runs) to 100 (not throttled)"))
    if pv.workers < 0:
        raise bad("workers", _("0 (cores - 1) or more"))
    if pv.max_attempts < 1:
        raise bad("max_attempts", _("at least 1"))
    for key in ("sprite_every_s", "first_part_s", "timeout_base_s", "timeout_per_media_s", "poll_s"):
        if getattr(pv, key) <= 0:
            raise bad(key, _("greater than 0"))
    if pv.retry_base_s < 0:
        raise bad("retry_base_s", _("0 or more"))
