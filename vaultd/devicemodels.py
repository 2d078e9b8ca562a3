"""Camera models an agency adds without code: ``devices.toml``.

Each ``[[model]]`` names a model, the driver that handles it (by driver
name), what it matches (USB ids, serial pattern, filesystem label, identity
file, SCSI inquiry) and optional settings the driver may use. ``parse`` is
pure (text in, ``CameraModel`` values out); ``load`` reads the file;
``locate`` says which file counts. Every error is a ``ConfigError`` naming the
file, the model and the key.

Where the file is looked up (``locate``): the path given with ``--devices
FILE`` (it must exist), else ``<home>/devices.toml`` when present, else none
(no configured models; ``config/devices.toml`` in the source tree is the
commented reference to copy from).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from collections.abc import Callable
from typing import Any

from vaultd.config import NAME_GROUPS, NamePattern
from vaultd.driverapi import CameraModel, Match, OptionValue, UsbId
from vaultd.errors import ConfigError
from vaultd.i18n import _

FILE_NAME = "devices.toml"
MAX_FILE_BYTES = 1 << 20
MAX_MODELS = 1000
MAX_NAME_CHARS = 64

_MATCH_KEYS = frozenset({"usb", "serial_pattern", "fs_label_pattern", "identity_file", "inquiry_pattern"})
_MODEL_KEYS = frozenset({
    "name", "driver", "vendor", "camera_tz", "name_patterns", "wipe_allowed",
    "password_env", "password_file", "options",
}) | _MATCH_KEYS
_OPTION_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

_Fail = Callable[[str, str], ConfigError]


def locate(home: Path | None, explicit: Path | None = None) -> Path | None:
    """The devices file that counts: ``explicit``, else ``<home>/devices.toml``, else None."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(_("devices file %s does not exist") % explicit,
                              hint=_("give an existing file with --devices, or leave it out"))
        return explicit
    if home is not None and (home / FILE_NAME).is_file():
        return home / FILE_NAME
    return None


def load(path: Path) -> tuple[CameraModel, ...]:
    """Read and validate ``path``."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(_("cannot read devices file %s: %s") % (path, exc.strerror or exc)) from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(_("devices file %s is larger than %d bytes") % (path, MAX_FILE_BYTES))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(_("devices file %s is not UTF-8 text") % path) from exc
    return parse(text, str(path))


def parse(text: str, source: str) -> tuple[CameraModel, ...]:
    """``devices.toml`` text -> models. ``source`` names the file in messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_("%s: not valid TOML: %s") % (source, exc),
                          hint=_("see config/devices.toml for the format")) from exc
    unknown = sorted(set(doc) - {"model"})
    if unknown:
        raise ConfigError(_("%s: unknown key %r (only [[model]] tables belong here)") % (source, unknown[0]))
    raw = doc.get("model", [])
    if not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw):
        raise ConfigError(_("%s: 'model' must be an array of tables ([[model]])") % source)
    if len(raw) > MAX_MODELS:
        raise ConfigError(_("%s: more than %d models") % (source, MAX_MODELS))
    models: list[CameraModel] = []
    seen: set[str] = set()
    for index, table in enumerate(raw, start=1):
        model = _model(table, source, index)
        if model.name in seen:
            raise ConfigError(_("%s: model %r: key 'name': two models have this name") % (source, model.name))
        seen.add(model.name)
        models.append(model)
    return tuple(models)


def name_patterns(models: tuple[CameraModel, ...]) -> tuple[NamePattern, ...]:
    """The configured models' file-name patterns, each limited to its model."""
    return tuple(NamePattern(regex, model=m.name) for m in models for regex in m.name_patterns)


def _model(table: dict[str, Any], source: str, index: int) -> CameraModel:
    label = f"#{index}"
    name = table.get("name")
    if isinstance(name, str) and name.strip():
        label = repr(name.strip())

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(_("%s: model %s: key %r: %s") % (source, label, key, problem),
                           hint=_("see config/devices.toml for the format"))

    unknown = sorted(set(table) - _MODEL_KEYS)
    if unknown:
        raise fail(unknown[0], _("unknown key"))
    name = _text(table, "name", fail, required=True, max_chars=MAX_NAME_CHARS)
    driver = _text(table, "driver", fail, required=True, max_chars=MAX_NAME_CHARS)
    assert name is not None and driver is not None
    match = _match(table, fail)
    patterns = _patterns(table.get("name_patterns", []), fail)
    wipe = table.get("wipe_allowed")
    if wipe is not None and not isinstance(wipe, bool):
        raise fail("wipe_allowed", _("must be true or false"))
    env = _text(table, "password_env", fail)
    if env is not None and not _ENV_NAME.fullmatch(env):
        raise fail("password_env", _("must be an environment variable name"))
    pw_file = _text(table, "password_file", fail, max_chars=4096)
    if pw_file is not None and not pw_file.startswith("/"):
        raise fail("password_file", _("must be an absolute path"))
    if env is not None and pw_file is not None:
        raise fail("password_file", _("give password_env or password_file, not both"))
    tz = _text(table, "camera_tz", fail)
    if tz is not None:
        _check_zone(tz, fail)
    return CameraModel(
        name=name, driver=driver, match=match, vendor=_text(table, "vendor", fail), camera_tz=tz,
        name_patterns=patterns, wipe_allowed=wipe, password_env=env, password_file=pw_file,
        options=_options(table.get("options", {}), fail), source=f"{source}: model {name!r}",
    )


def _text(table: dict[str, Any], key: str, fail: _Fail, *, required: bool = False,
          max_chars: int = 256) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise fail(key, _("is required"))
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars or not value.isprintable():
        raise fail(key, _("must be a printable string of at most %d characters") % max_chars)
    return value.strip()


def _match(table: dict[str, Any], fail: _Fail) -> Match:
    usb_raw = table.get("usb", [])
    if isinstance(usb_raw, str):
        usb_raw = [usb_raw]
    if not isinstance(usb_raw, list) or not all(isinstance(u, str) for u in usb_raw):
        raise fail("usb", _("must be a list of 'vvvv:pppp' strings"))
    usb: list[UsbId] = []
    for text in usb_raw:
        try:
            usb.append(UsbId.parse(text))
        except ValueError:
            raise fail("usb", _("%r is not a USB id 'vvvv:pppp' (hex, as lsusb prints it)") % text) from None
    kwargs: dict[str, Any] = {}
    for key in ("serial_pattern", "fs_label_pattern", "identity_file", "inquiry_pattern"):
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(key, _("must be a string"))
        kwargs[key] = value
        one: dict[str, Any] = {key: value}
        try:
            Match(**one)  # validates this key alone, so the message names it
        except ValueError as exc:
            raise fail(key, str(exc)) from None
    match = Match(usb=tuple(usb), **kwargs)
    if match.empty:
        raise fail("usb", _("a model must match on at least one of: %s") % ", ".join(sorted(_MATCH_KEYS)))
    return match


def _patterns(value: Any, fail: _Fail) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail("name_patterns", _("must be a list of regular expressions"))
    for regex in value:
        try:
            groups = set(re.compile(regex).groupindex)
        except re.error as exc:
            raise fail("name_patterns", _("%r is not a valid regular expression: %s") % (regex, exc)) from None
        extra = groups - NAME_GROUPS
        if extra:
            raise fail("name_patterns", _("unknown group %r (known: %s)")
                       % (sorted(extra)[0], ", ".join(sorted(NAME_GROUPS))))
    return tuple(value)


def _options(value: Any, fail: _Fail) -> tuple[tuple[str, OptionValue], ...]:
    if not isinstance(value, dict):
        raise fail("options", _("must be a table of simple values"))
    out: list[tuple[str, OptionValue]] = []
    for key, item in sorted(value.items()):
        if not _OPTION_KEY.fullmatch(key):
            raise fail(f"options.{key}", _("option names are lower-case letters, digits and '_'"))
        if not isinstance(item, (str, int, float, bool)):
            raise fail(f"options.{key}", _("must be a string, number or true/false"))
        out.append((key, item))
    return tuple(out)


def _check_zone(tz: str, fail: _Fail) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail("camera_tz", _("%r is not a known time zone") % tz) from None
