"""media: probe and the generators, against the real ffmpeg."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from vaultd import media
from vaultd.errors import ConfigError, VaultError

WHEN = datetime(2024, 5, 1, 10, 3, 4, tzinfo=timezone(timedelta(hours=8)))

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("faststart", [True, False])
def test_probe_real_clip(tmp_path: Path, faststart: bool) -> None:
    clip = tmp_path / "clip.mp4"
    media.make_video(clip, seconds=3.0, creation_time=WHEN, width=320, height=240, faststart=faststart,
                     label="cam 1 #0001")
    result = media.probe(clip)
    assert result.ok and result.error is None
    assert result.video_codec == "h264"
    assert result.audio_codec == "aac"
    assert (result.width, result.height) == (320, 240)
    assert result.duration_s == pytest.approx(3.0, abs=0.1)
    assert result.creation_time == WHEN
    assert result.creation_time is not None and result.creation_time.utcoffset() == timedelta(0)
    assert result.format_name is not None and "mp4" in result.format_name
    assert {s["codec_type"] for s in result.raw["streams"]} == {"video", "audio"}


def test_probe_audio_and_photo(tmp_path: Path) -> None:
    wav, m4a, jpg = tmp_path / "a.WAV", tmp_path / "a.m4a", tmp_path / "p.JPG"
    media.make_audio(wav, seconds=1.5, creation_time=WHEN)
    media.make_audio(m4a, seconds=1.5, creation_time=WHEN)
    media.make_photo(jpg, width=320, height=240, when=WHEN)
    for path, codec in ((wav, "pcm_s16le"), (m4a, "aac")):
        result = media.probe(path)
        assert result.ok and result.audio_codec == codec and result.video_codec is None
        assert result.duration_s == pytest.approx(1.5, abs=0.1)
        assert result.creation_time == WHEN
    photo = media.probe(jpg)
    assert photo.ok and photo.video_codec == "mjpeg" and (photo.width, photo.height) == (320, 240)
    data = jpg.read_bytes()
    assert data.startswith(b"\xff\xd8") and b"Exif\0\0" in data
    assert b"2024:05:01 10:03:04\0" in data and b"+08:00\0" in data


GARBAGE = [b"", b"\0" * 1000, b"not a video at all\n" * 50, b"\0\0\0\x18ftypisom" + b"\xff" * 64]


@pytest.mark.parametrize("content", GARBAGE)
def test_probe_garbage_does_not_raise(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    result = media.probe(bad)
    assert not result.ok
    assert result.error and "\n" not in result.error
    assert result.raw == {} and result.duration_s is None and result.creation_time is None


def test_probe_odd_names_and_missing_files(tmp_path: Path) -> None:
    clip = tmp_path / "-i http:evil.mp4"
    media.make_video(clip, seconds=1.0, creation_time=WHEN, width=160, height=120)
    assert media.probe(clip).ok
    assert not media.probe(tmp_path / "missing.mp4").ok
    assert not media.probe(tmp_path).ok


def test_probe_of_truncated_tail_moov_clip(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    media.make_video(clip, seconds=2.0, creation_time=WHEN, width=160, height=120, faststart=False)
    data = clip.read_bytes()
    clip.write_bytes(data[: int(len(data) * 0.6)])
    result = media.probe(clip)
    assert not result.ok
    assert result.error is not None and "moov" in result.error


def test_missing_tools_are_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError) as caught:
        media.probe(tmp_path / "x.mp4")
    assert "ffprobe" in str(caught.value)
    assert "apt-get install ffmpeg" in str(caught.value)
    with pytest.raises(ConfigError):
        media.make_photo(tmp_path / "x.jpg")
    assert list(tmp_path.iterdir()) == []


def test_tool_versions() -> None:
    versions = media.tool_versions()
    assert versions["ffmpeg"].startswith("ffmpeg version")
    assert versions["ffprobe"].startswith("ffprobe version")
    versions["ffmpeg"] = "changed"
    assert media.tool_versions()["ffmpeg"].startswith("ffmpeg version")


def test_ffmpeg_failure_carries_stderr(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    with pytest.raises(VaultError) as caught:
        media.make_video(out, seconds=1.0, creation_time=WHEN, width=161, height=121)
    assert "libx264" in str(caught.value) or "divisible" in str(caught.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_naive_creation_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        media.make_video(tmp_path / "x.mp4", seconds=1.0, creation_time=datetime(2024, 1, 1))
