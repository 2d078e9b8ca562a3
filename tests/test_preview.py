"""Preview decisions (pure): encoder choice, sizes, strip text, back-off, time limits, config."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from vaultd import config as config_mod
from vaultd.config import PreviewConfig
from vaultd.errors import ConfigError
from vaultd.media import Encoder
from vaultd.model import MediaType, Recording, TimeSource
from vaultd.preview import (
    backoff_s,
    choose_encoder,
    ffmpeg_threads,
    kind_of,
    output_height,
    sprite_layout,
    strip_text,
    time_limit_s,
    worker_count,
)

ALL = {"libx264", "h264_vaapi", "h264_nvenc", "aac"}
NODE = ("/dev/dri/renderD128",)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("setting", "encoders", "nodes", "nvidia", "expected"), [
    # auto: VAAPI first, then NVENC, else software
    ("auto", ALL, NODE, True, Encoder("h264_vaapi", NODE[0])),
    ("auto", ALL, (), True, Encoder("h264_nvenc")),
    ("auto", ALL, (), False, Encoder("libx264")),
    ("auto", {"libx264", "h264_nvenc"}, NODE, False, Encoder("libx264")),  # a node but no VAAPI encoder
    ("auto", {"libx264"}, NODE, True, Encoder("libx264")),  # hardware present, ffmpeg built without it
    # named ones: only that one, else software
    ("vaapi", ALL, NODE, True, Encoder("h264_vaapi", NODE[0])),
    ("vaapi", ALL, (), True, Encoder("libx264")),
    ("nvenc", ALL, NODE, True, Encoder("h264_nvenc")),
    ("nvenc", ALL, NODE, False, Encoder("libx264")),
    # software never takes hardware
    ("software", ALL, NODE, True, Encoder("libx264")),
])
def test_encoder_choice(setting: str, encoders: set[str], nodes: tuple[str, ...], nvidia: bool,
                        expected: Encoder) -> None:
    got, why = choose_encoder(setting, encoders, nodes, nvidia)
    assert got == expected and why
    assert got.hardware == (expected.name != "libx264")


def test_worker_count_default_is_cores_minus_one_at_least_one() -> None:
    assert [worker_count(0, n) for n in (None, 1, 2, 4, 16)] == [1, 1, 1, 3, 15]
    assert worker_count(3, 2) == 3


def test_background_ffmpeg_leaves_a_core_for_ingest() -> None:
    assert [ffmpeg_threads(c, 1) for c in (1, 2, 4, 16)] == [0, 1, 3, 15]
    assert ffmpeg_threads(16, 3) == 5 and ffmpeg_threads(2, 3) == 1


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n, 60) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff_s(40, 60) == 6 * 3600


def test_time_limit_scales_with_duration_and_size() -> None:
    cfg = PreviewConfig()
    short, long_ = time_limit_s(60, 1, cfg), time_limit_s(3600, 1, cfg)
    assert short < long_ and long_ == cfg.timeout_base_s + cfg.timeout_per_media_s * 3600
    # unknown duration (damaged clip): guessed from the size, never unlimited
    assert time_limit_s(None, 10**9, cfg) == cfg.timeout_base_s + cfg.timeout_per_media_s * 2000


def test_output_height_never_upscales_and_is_even() -> None:
    assert output_height(1080, 480) == 480
    assert output_height(360, 480) == 360
    assert output_height(361, 720) == 360
    assert output_height(None, 480) == 480


def test_sprite_layout_one_per_interval_at_most_300() -> None:
    assert sprite_layout(60, 10) == (10, 6, 6)
    assert sprite_layout(600, 10) == (10, 60, 10)
    every, count, columns = sprite_layout(8 * 3600, 10)
    assert count == 300 and every == 96 and columns == 10
    assert sprite_layout(None, 10) == (10, 1, 1)


def _rec(**kw: object) -> Recording:
    base = Recording(
        id="r1234abcd", sha256="a" * 64, size_bytes=1, original_name="x.MP4", original_name_raw=b"x.MP4",
        name_oddities=(), source_path="DCIM/x.MP4", media_type=MediaType.VIDEO, device_serial="3201001",
        device_model=None, officer_id="012345",
        recorded_start=datetime(2026, 11, 21, 0, 30, 5, tzinfo=timezone.utc), recorded_end=None,
        time_source=TimeSource.CONTAINER, clock_offset_s=45.0, time_flags=(),
        ingested_at=datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc), ingest_deadline=None, on_time=True,
        duration_s=60.0, video_codec="h264", audio_codec="aac", width=1920, height=1080, damaged=False,
        damage_reasons=(), important=False, making_method="", maker=None, ingest_session="s")
    return replace(base, **kw)  # type: ignore[arg-type]


def test_strip_names_recording_time_in_station_zone_and_the_marking() -> None:
    text = strip_text(_rec(), SHANGHAI, cjk=True, clock=False)
    assert text == "r1234abcd  2026-11-21 08:30:05 UTC+08:00  PREVIEW / 预览 - not evidence"


def test_strip_clock_runs_from_the_corrected_start() -> None:
    text = strip_text(_rec(), SHANGHAI, cjk=True, clock=True)
    local_epoch = datetime(2026, 11, 21, 8, 30, 5, tzinfo=timezone.utc).timestamp()
    assert f"%{{pts:gmtime:{local_epoch:.3f}:" in text and text.endswith("PREVIEW / 预览 - not evidence")


def test_strip_says_when_the_camera_clock_was_not_corrected_or_time_is_unknown() -> None:
    assert "(camera clock)" in strip_text(_rec(clock_offset_s=None), SHANGHAI, cjk=True, clock=False)
    assert "time unknown" in strip_text(_rec(recorded_start=None), SHANGHAI, cjk=True, clock=True)


def test_strip_without_a_cjk_font_is_latin_only() -> None:
    text = strip_text(_rec(), SHANGHAI, cjk=False, clock=False)
    assert text.endswith("PREVIEW - not evidence") and "预览" not in text


def test_other_files_get_no_preview() -> None:
    assert kind_of(_rec(media_type=MediaType.OTHER)) is None
    assert [kind_of(_rec(media_type=m)) for m in (MediaType.VIDEO, MediaType.AUDIO, MediaType.PHOTO)] == [
        "video", "audio", "photo"]


@pytest.mark.parametrize(("key", "value"), [
    ("encoder", "quicksync"), ("height", 481), ("height", 4000), ("preset", "placebo"), ("crf", 60),
    ("workers", -1), ("max_attempts", 0), ("timeout_per_media_s", 0), ("fps", -1),
    ("x264_params", "subme"), ("x264_params", "me=dia;rm -rf /"), ("x264_params", "me=dia:"),
    ("audio_copy", "yes"),
])
def test_bad_preview_config_names_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"preview.{key}"):
        config_mod.from_dict({"preview": {key: value}}, "test.toml")


def test_preview_config_defaults_and_720p_option() -> None:
    assert config_mod.from_dict({}, "x").preview.height == 480
    cheap = config_mod.from_dict({}, "x").preview
    assert (cheap.preset, cheap.x264_params, cheap.audio_copy) == ("veryfast", "me=dia:subme=1:partitions=i8x8,i4x4", True)
    assert config_mod.from_dict({"preview": {"x264_params": ""}}, "x").preview.x264_params == ""
    assert config_mod.from_dict({"preview": {"height": 720, "encoder": "nvenc"}}, "x").preview.height == 720
