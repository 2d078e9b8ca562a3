"""media: the video preview's ffmpeg run with the cheaper settings (#7), against the real ffmpeg."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from vaultd import media

WHEN = datetime(2024, 5, 1, 10, 3, 4, tzinfo=timezone(timedelta(hours=8)))

pytestmark = pytest.mark.slow


def _spec(**changes: object) -> media.VideoSpec:
    spec = media.VideoSpec(height=120, fps=15, preset="veryfast", crf=28, audio_kbps=64,
                           encoder=media.Encoder("libx264"), has_audio=True,
                           strip="id  %{pts:gmtime:1714557784:%H\\:%M\\:%S}  PREVIEW - not evidence",
                           font_file=media.find_font()[0], x264_params="me=dia:subme=1:partitions=i8x8,i4x4",
                           audio_copy=True)
    return media.VideoSpec(**{**spec.__dict__, **changes})


def _frames(path: Path) -> list[float]:
    done = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "frame=pts_time", "-of", "json", str(path)], capture_output=True, check=True)
    return [float(f["pts_time"]) for f in json.loads(done.stdout)["frames"]]


@pytest.mark.parametrize("audio_copy", [True, False])
def test_cheap_preview_keeps_its_timing_and_sound(tmp_path: Path, audio_copy: bool) -> None:
    src = tmp_path / "clip.mp4"
    media.make_video(src, seconds=4.0, creation_time=WHEN, width=320, height=240, fps=30)
    original = media.probe(src)
    out = tmp_path / "video.mp4"
    ran = media.make_preview_video(src, out, _spec(audio_copy=audio_copy), tmp_path, timeout_s=60,
                                   low_priority=False)
    argv = list(ran.argv)
    assert argv.index("-skip_loop_filter") < argv.index("-i")  # a decoder option
    assert "me=dia:subme=1:partitions=i8x8,i4x4" in argv and "flags=area" in " ".join(argv)
    info = media.probe(out)
    assert info.ok and info.video_codec == "h264" and info.height == 120 and info.audio_codec == "aac"
    assert info.duration_s == pytest.approx(4.0, abs=0.1)
    # 15 frames a second, evenly spaced: the burned-in clock (drawn from each frame's time) runs true
    times = _frames(out)
    assert len(times) == 60
    assert all(b - a == pytest.approx(1 / 15, abs=1e-3) for a, b in zip(times, times[1:]))
    channels = {s["codec_type"]: s.get("channels") for s in info.raw["streams"]}["audio"]
    source_channels = {s["codec_type"]: s.get("channels") for s in original.raw["streams"]}["audio"]
    assert channels == (source_channels if audio_copy else 1)
    assert ("copy" in argv) == audio_copy


def test_no_x264_params_leaves_the_preset_alone(tmp_path: Path) -> None:
    argv = media.preview_video_argv(tmp_path / "in.mp4", tmp_path / "out.mp4", _spec(x264_params=""), tmp_path)
    assert "-x264-params" not in argv and "veryfast" in argv
