"""Structure checks: hand-built MP4/JPEG/WAV bytes, hostile inputs, real ffmpeg output."""

from __future__ import annotations

import io
import struct
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from vaultd.containers import StructureReport, check_path, check_stream
from vaultd.media import make_audio, make_photo, make_video, probe

MP4_EPOCH = datetime(1904, 1, 1, tzinfo=timezone.utc)
CREATED = datetime(2024, 5, 1, 2, 3, 4, tzinfo=timezone.utc)
SAMPLE = 100          # bytes per sample
PER_CHUNK = 2         # samples per chunk
CHUNKS = 5


# --------------------------------------------------------------------------
# a tiny ISO-BMFF writer


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, payload: bytes, version: int = 0) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + payload)


def mvhd(created: int, timescale: int, duration: int, version: int = 0) -> bytes:
    if version == 1:
        times = struct.pack(">QQIQ", created, created, timescale, duration)
    else:
        times = struct.pack(">IIII", created, created, timescale, duration)
    return full_box(b"mvhd", times + bytes(80), version)


def hdlr(handler: bytes) -> bytes:
    return full_box(b"hdlr", bytes(4) + handler + bytes(12) + b"\0")


def sample_entry(fourcc: bytes, width: int = 0, height: int = 0, *, visual: bool = True) -> bytes:
    """A VisualSampleEntry (86 bytes) or an AudioSampleEntry (36 bytes), codec boxes left out."""
    base = bytes(6) + struct.pack(">H", 1)
    if visual:
        return box(fourcc, base + bytes(16) + struct.pack(">HH", width, height) + bytes(50))
    return box(fourcc, base + bytes(20))


def stsd(*entries: bytes, count: int | None = None) -> bytes:
    return full_box(b"stsd", struct.pack(">I", len(entries) if count is None else count) + b"".join(entries))


AVC = sample_entry(b"avc1", 640, 360)
AAC = sample_entry(b"mp4a", visual=False)
Track = tuple[bytes, bytes]   # handler type, stsd box
VIDEO_TRACK: Track = (b"vide", stsd(AVC))


def sample_tables(offsets: list[int], *, co64: bool = False, description: bytes = b"") -> bytes:
    sizes = [SAMPLE] * (len(offsets) * PER_CHUNK)
    if co64:
        chunk_box = full_box(b"co64", struct.pack(">I", len(offsets)) + b"".join(struct.pack(">Q", o) for o in offsets))
    else:
        chunk_box = full_box(b"stco", struct.pack(">I", len(offsets)) + b"".join(struct.pack(">I", o) for o in offsets))
    stsc = full_box(b"stsc", struct.pack(">IIII", 1, 1, PER_CHUNK, 1))
    stsz = full_box(b"stsz", struct.pack(">II", 0, len(sizes)) + b"".join(struct.pack(">I", s) for s in sizes))
    return box(b"stbl", description + stsc + stsz + chunk_box)


def trak_box(offsets: list[int], track: Track, *, co64: bool = False) -> bytes:
    handler, description = track
    stbl = sample_tables(offsets, co64=co64, description=description)
    return box(b"trak", box(b"mdia", hdlr(handler) + box(b"minf", stbl)))


def moov_box(
    offsets: list[int], *, mvhd_version: int = 0, co64: bool = False, tracks: tuple[Track, ...] = (VIDEO_TRACK,)
) -> bytes:
    created = int((CREATED - MP4_EPOCH).total_seconds())
    traks = b"".join(trak_box(offsets, track, co64=co64) for track in tracks)
    return box(b"moov", mvhd(created, 1000, 4000, mvhd_version) + traks)


def build_mp4(
    *, faststart: bool = True, mvhd_version: int = 0, co64: bool = False, mdat_size_zero: bool = False,
    tracks: tuple[Track, ...] = (VIDEO_TRACK,),
) -> bytes:
    ftyp = box(b"ftyp", b"isom\0\0\2\0isomiso2mp41")
    media = bytes(range(256)) * 4
    media = media[: SAMPLE * PER_CHUNK * CHUNKS]
    moov_len = len(moov_box([0] * CHUNKS, mvhd_version=mvhd_version, co64=co64, tracks=tracks))
    mdat_start = len(ftyp) + (moov_len if faststart else 0) + 8
    offsets = [mdat_start + i * SAMPLE * PER_CHUNK for i in range(CHUNKS)]
    moov = moov_box(offsets, mvhd_version=mvhd_version, co64=co64, tracks=tracks)
    mdat = box(b"mdat", media)
    if mdat_size_zero:
        mdat = struct.pack(">I", 0) + b"mdat" + media
        assert faststart, "a size-0 box must be last"
    return ftyp + moov + mdat if faststart else ftyp + mdat + moov


def check_bytes(data: bytes, expect_kind: str | None = None) -> StructureReport:
    return check_stream(io.BytesIO(data), len(data), expect_kind=expect_kind)


class CountingFile(io.RawIOBase):
    """A read-only virtual file: ``regions`` of real bytes over zeros, of any claimed size.

    Counts what a check reads, so tests can assert it never reads much.
    """

    def __init__(self, size: int, regions: dict[int, bytes]) -> None:
        self.size = size
        self.regions = regions
        self.pos = 0
        self.total_read = 0
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else self.size + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        out = bytearray(max(0, n))
        for start, data in self.regions.items():
            lo, hi = max(start, self.pos), min(start + len(data), self.pos + len(out))
            if lo < hi:
                out[lo - self.pos: hi - self.pos] = data[lo - start: hi - start]
        self.pos += len(out)
        self.total_read += len(out)
        self.largest_read = max(self.largest_read, len(out))
        return bytes(out)


# --------------------------------------------------------------------------
# hand-built MP4


@pytest.mark.parametrize("faststart", [True, False])
@pytest.mark.parametrize("mvhd_version", [0, 1])
@pytest.mark.parametrize("co64", [False, True])
def test_complete_mp4_is_ok(faststart: bool, mvhd_version: int, co64: bool) -> None:
    report = check_bytes(build_mp4(faststart=faststart, mvhd_version=mvhd_version, co64=co64))
    assert report.kind == "mp4"
    assert report.ok, report.problems
    assert report.problems == ()
    assert report.creation_time == CREATED
    assert report.duration_s == pytest.approx(4.0)
    assert (report.width, report.height, report.video_codec, report.audio_codec) == (640, 360, "h264", None)


@pytest.mark.parametrize("faststart", [True, False])
def test_every_cut_is_caught(faststart: bool) -> None:
    data = build_mp4(faststart=faststart)
    for cut in range(1, len(data)):
        report = check_bytes(data[:cut], expect_kind="mp4")
        assert report.kind == "mp4"
        assert not report.ok, f"cut at {cut} of {len(data)} passed"
        assert report.problems


def test_faststart_cut_in_media_names_mdat_and_offsets() -> None:
    data = build_mp4(faststart=True)
    cut = data[: len(data) - 450]
    report = check_bytes(cut)
    assert any("'mdat'" in p and f"file ends at {len(cut)}" in p for p in report.problems)
    assert any("chunk offsets" in p for p in report.problems)
    # the index is intact, so the claimed duration is still the full one
    assert report.duration_s == pytest.approx(4.0)


def test_tail_moov_cut_has_no_moov() -> None:
    data = build_mp4(faststart=False)
    report = check_bytes(data[: int(len(data) * 0.6)])
    assert "no 'moov' box" in report.problems
    assert report.creation_time is None


def test_box_claiming_past_eof() -> None:
    data = build_mp4()
    ftyp_len = struct.unpack(">I", data[:4])[0]
    hacked = data[:ftyp_len] + struct.pack(">I", len(data) * 3) + data[ftyp_len + 4:]
    report = check_bytes(hacked)
    assert not report.ok
    assert any("'moov'" in p and "claims" in p and "file ends at" in p for p in report.problems)


def test_missing_moov_and_missing_ftyp() -> None:
    data = box(b"ftyp", b"isom\0\0\0\0") + box(b"mdat", b"x" * 64)
    assert check_bytes(data).problems == ("no 'moov' box",)
    no_ftyp = box(b"mdat", b"x" * 64)
    assert "no 'ftyp' box" in check_bytes(no_ftyp).problems


def test_zero_size_box_runs_to_end_of_file() -> None:
    data = build_mp4(mdat_size_zero=True)
    assert check_bytes(data).ok
    # with a size-0 mdat the box cannot overrun; the sample tables still catch the cut
    cut = data[:-150]
    report = check_bytes(cut)
    assert not report.ok
    assert any("sample data" in p and "runs to" in p for p in report.problems), report.problems


def test_zero_size_box_swallows_a_later_moov() -> None:
    ftyp = box(b"ftyp", b"isom\0\0\0\0")
    data = ftyp + struct.pack(">I", 0) + b"mdat" + b"x" * 64 + moov_box([len(ftyp) + 8])
    assert "no 'moov' box" in check_bytes(data).problems


def test_trailing_garbage_and_impossible_size() -> None:
    data = build_mp4()
    report = check_bytes(data + b"\0\0\0\0\0")
    assert any("5 stray bytes" in p for p in report.problems)
    bad = data + struct.pack(">I", 4) + b"free"
    assert any("impossible size 4" in p for p in check_bytes(bad).problems)


def test_mvhd_zero_timescale_and_zero_creation() -> None:
    ftyp = box(b"ftyp", b"isom\0\0\0\0")
    data = ftyp + box(b"moov", mvhd(0, 0, 10)) + box(b"mdat", b"x")
    report = check_bytes(data)
    assert "'mvhd' timescale is 0" in report.problems
    assert report.creation_time is None and report.duration_s is None


def test_stream_position_is_restored() -> None:
    data = build_mp4()
    f = io.BytesIO(data)
    f.seek(17)
    check_stream(f, len(data))
    assert f.tell() == 17


# --------------------------------------------------------------------------
# MP4 sample descriptions


def media_fields(report: StructureReport) -> tuple[int | None, int | None, str | None, str | None]:
    return report.width, report.height, report.video_codec, report.audio_codec


def test_first_video_and_first_audio_track_win() -> None:
    tracks = (
        (b"soun", stsd(sample_entry(b"samr", visual=False))),
        (b"tmcd", stsd(sample_entry(b"tmcd", visual=False))),   # neither picture nor sound
        (b"vide", stsd(sample_entry(b"hvc1", 1920, 1080), AVC)),  # only the first entry counts
        (b"soun", stsd(AAC)),
        (b"vide", stsd(AVC)),
    )
    report = check_bytes(build_mp4(tracks=tracks))
    assert report.ok, report.problems
    assert media_fields(report) == (1920, 1080, "hevc", "amr_nb")


def test_audio_only_mp4_has_no_picture() -> None:
    report = check_bytes(build_mp4(tracks=((b"soun", stsd(AAC)),)))
    assert report.ok
    assert media_fields(report) == (None, None, None, "aac")


@pytest.mark.parametrize(
    ("handler", "fourcc", "name"),
    [
        (b"vide", b"avc1", "h264"), (b"vide", b"avc3", "h264"), (b"vide", b"hvc1", "hevc"),
        (b"vide", b"hev1", "hevc"), (b"vide", b"mp4v", "mpeg4"), (b"vide", b"XyZ ", "xyz"),
        (b"soun", b"mp4a", "aac"), (b"soun", b"Opus", "opus"), (b"soun", b"samr", "amr_nb"),
        (b"soun", b"sawb", "amr_wb"), (b"soun", b"ulaw", "pcm_mulaw"), (b"soun", b"alaw", "pcm_alaw"),
        (b"soun", b"sowt", "pcm_s16le"), (b"soun", b"twos", "pcm_s16be"), (b"soun", b"lpcm", "pcm_s16le"),
        (b"soun", b"\x01ab ", "\\x01ab"),
    ],
)
def test_codec_names_follow_ffprobe(handler: bytes, fourcc: bytes, name: str) -> None:
    entry = sample_entry(fourcc, 320, 240, visual=handler == b"vide")
    report = check_bytes(build_mp4(tracks=((handler, stsd(entry)),)))
    codec = report.video_codec if handler == b"vide" else report.audio_codec
    assert codec == name


@pytest.mark.parametrize(
    "description",
    [
        pytest.param(stsd(), id="zero-entries"),
        pytest.param(stsd(count=1), id="count-without-entry"),
        pytest.param(full_box(b"stsd", struct.pack(">I", 1) + AVC[:12]), id="entry-cut-short"),
        pytest.param(full_box(b"stsd", struct.pack(">I", 1) + struct.pack(">I", 4000) + AVC[4:]),
                     id="entry-larger-than-stsd"),
        pytest.param(full_box(b"stsd", struct.pack(">I", 1) + struct.pack(">I", 4) + AVC[4:]),
                     id="entry-smaller-than-its-header"),
        pytest.param(full_box(b"stsd", b""), id="no-count"),
        pytest.param(b"", id="no-stsd"),
    ],
)
def test_bad_sample_description_leaves_fields_none(description: bytes) -> None:
    report = check_bytes(build_mp4(tracks=((b"vide", description), (b"soun", description))))
    assert report.ok, report.problems  # the chunk tables are fine; a description is read, not judged
    assert media_fields(report) == (None, None, None, None)


def test_short_visual_entry_gives_codec_without_size() -> None:
    short = box(b"avc1", bytes(6) + struct.pack(">H", 1) + bytes(8))  # 24 bytes: width/height missing
    report = check_bytes(build_mp4(tracks=((b"vide", stsd(short)),)))
    assert media_fields(report) == (None, None, "h264", None)
    zero = check_bytes(build_mp4(tracks=((b"vide", stsd(sample_entry(b"avc1", 0, 0))),)))
    assert media_fields(zero) == (None, None, "h264", None)


def test_track_without_handler_is_not_counted() -> None:
    # a picture codec, but no 'hdlr' to say the track is video (and one whose 'hdlr' is cut short)
    stbl = sample_tables([0], description=stsd(AVC))
    short_hdlr = full_box(b"hdlr", bytes(4) + b"vid")
    ftyp = box(b"ftyp", b"isom\0\0\0\0")
    for mdia in (box(b"mdia", box(b"minf", stbl)), box(b"mdia", short_hdlr + box(b"minf", stbl))):
        trak = box(b"trak", mdia)
        report = check_bytes(ftyp + box(b"moov", mvhd(1, 1000, 1) + trak) + box(b"mdat", b"x" * 64))
        assert media_fields(report) == (None, None, None, None)


def test_hostile_sample_entry_reads_little() -> None:
    # an stsd claiming 2**32-1 entries whose first claims 4 GiB, in a 1 TiB "file"
    entry = struct.pack(">I4s", 2**32 - 1, b"avc1") + bytes(28)
    description = full_box(b"stsd", struct.pack(">I", 2**32 - 1) + entry)
    data = build_mp4(tracks=((b"vide", description),))
    f = CountingFile(2**40, {0: data})
    report = check_stream(cast(BinaryIO, f), f.size)
    assert media_fields(report) == (None, None, None, None)
    assert f.total_read < 16 * 1024


# --------------------------------------------------------------------------
# hostile MP4


def test_hostile_64bit_size_reads_little() -> None:
    ftyp = box(b"ftyp", b"isom\0\0\0\0")
    huge = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 2**64 - 1)
    f = CountingFile(2**40, {0: ftyp + huge})
    report = check_stream(cast(BinaryIO, f), f.size)
    assert any("claims 18446744073709551615 bytes" in p for p in report.problems)
    assert f.total_read < 1024


def big_header(kind: bytes, total_size: int) -> bytes:
    return struct.pack(">I4sQ", 1, kind, total_size)


def test_hostile_table_counts_are_bounded() -> None:
    # a 1 TiB "file" with a 16 GiB stco box claiming 2**32-1 chunks, and runs/sizes claiming as many samples
    claimed = 2**32 - 1
    stco_size = 16 + 8 + 4 * claimed
    stsc = full_box(b"stsc", struct.pack(">IIII", 1, 1, claimed, 1))
    stsz = full_box(b"stsz", struct.pack(">II", 0, claimed))
    stbl_size = 16 + len(stsc) + len(stsz) + stco_size
    sizes = {b"stbl": stbl_size}
    for inner, outer in ((b"stbl", b"minf"), (b"minf", b"mdia"), (b"mdia", b"trak")):
        sizes[outer] = 16 + sizes[inner]
    header = mvhd(1, 1000, 1000)
    sizes[b"moov"] = 16 + len(header) + sizes[b"trak"]
    data = box(b"ftyp", b"isom\0\0\0\0") + big_header(b"moov", sizes[b"moov"]) + header
    for kind in (b"trak", b"mdia", b"minf", b"stbl"):
        data += big_header(kind, sizes[kind])
    data += stsc + stsz + big_header(b"stco", stco_size) + bytes(4) + struct.pack(">I", claimed)
    f = CountingFile(2**40, {0: data})
    report = check_stream(cast(BinaryIO, f), f.size)
    assert f.largest_read <= 64 * 1024
    assert f.total_read < 16 * 1024 * 1024
    assert report.kind == "mp4"
    assert "no 'mdat' box" in report.problems


def test_table_claiming_more_than_its_box() -> None:
    ftyp = box(b"ftyp", b"isom\0\0\0\0")
    stco = full_box(b"stco", struct.pack(">II", 1000, 40))
    trak = box(b"trak", box(b"mdia", box(b"minf", box(b"stbl", stco))))
    data = ftyp + box(b"moov", mvhd(1, 1000, 1) + trak) + box(b"mdat", b"x" * 64)
    report = check_bytes(data)
    assert report.problems == ("track 1: 'stco' claims 1000 entries, box holds 1",)


def test_too_many_boxes_stops() -> None:
    data = box(b"ftyp", b"isom\0\0\0\0") + box(b"free") * 150_000
    f = CountingFile(len(data), {0: data})
    report = check_stream(cast(BinaryIO, f), f.size)
    assert any("more than 100000 boxes" in p for p in report.problems)
    assert f.total_read < 100_001 * 16 + 1024


def test_deep_nesting_terminates() -> None:
    inner = box(b"stco", bytes(8))
    for kind in [b"stbl", b"minf", b"mdia", b"trak", b"moov"] * 200:
        inner = box(kind, inner)
    data = box(b"ftyp", b"isom\0\0\0\0") + inner + box(b"mdat", b"x")
    report = check_bytes(data)
    assert not report.ok
    assert "no 'mvhd' box in 'moov'" in report.problems


def test_problem_list_is_capped() -> None:
    # many tracks, each missing its tables: one problem per track, capped
    traks = b"".join(box(b"trak") for _ in range(500))
    data = box(b"ftyp", b"isom\0\0\0\0") + box(b"moov", mvhd(1, 1000, 1) + traks) + box(b"mdat", b"x")
    report = check_bytes(data)
    assert len(report.problems) <= 33
    assert report.problems[-1].startswith("... and ")


# --------------------------------------------------------------------------
# JPEG, WAV, unknown


def jpeg_bytes() -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\1\2\0\0\1\0\1\0\0"
    return b"\xff\xd8" + app0 + b"\xff\xda\0\x08\1\1\0\0\x3f\0" + b"\x12\x34" * 50 + b"\xff\xd9"


def test_jpeg_ok_and_truncated() -> None:
    data = jpeg_bytes()
    assert check_bytes(data) == StructureReport("jpeg", True, (), None, None)
    assert check_bytes(data + b"\0" * 4).ok
    assert not check_bytes(data + b"\0" * 40).ok
    cut = check_bytes(data[:-10])
    assert cut.kind == "jpeg" and not cut.ok
    assert "FFD9" in cut.problems[0]


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", 2 + len(payload)) + payload


def sof(marker: int, width: int, height: int) -> bytes:
    return segment(marker, bytes([8]) + struct.pack(">HH", height, width) + b"\x03" + bytes(9))


def jpeg_with(*segments: bytes) -> bytes:
    return b"\xff\xd8" + b"".join(segments) + b"\xff\xda\0\x08\1\1\0\0\x3f\0" + b"\x12\x34" * 50 + b"\xff\xd9"


DHT = segment(0xC4, bytes(17) + b"\0")          # in the SOF range, but a Huffman table
COM = segment(0xFE, b"vaultd test")


@pytest.mark.parametrize("marker", [0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC9, 0xCB, 0xCF])
def test_jpeg_frame_size(marker: int) -> None:
    app0 = jpeg_bytes()[2:20]
    data = jpeg_with(COM, app0, DHT, segment(0xC8, b"jpg"), segment(0xCC, b"ac"), sof(marker, 321, 123))
    report = check_bytes(data)
    assert report.ok, report.problems
    assert media_fields(report) == (321, 123, None, None)  # a photo has no codec


def test_jpeg_fill_bytes_and_restart_markers_are_stepped_over() -> None:
    data = jpeg_with(COM, b"\xff\xff\xff", b"\xff\xd0", sof(0xC0, 64, 48))
    assert media_fields(check_bytes(data)) == (64, 48, None, None)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(jpeg_bytes(), id="no-sof"),
        pytest.param(jpeg_with(COM) + sof(0xC0, 64, 48), id="sof-after-scan"),
        pytest.param(jpeg_with(COM, segment(0xC0, b"\x08\0")), id="sof-too-short"),
        pytest.param(b"\xff\xd8" + COM + b"\xff\xc0\0\x11\x08\0", id="sof-cut-by-eof"),
        pytest.param(jpeg_with(COM, segment(0xC0, b"")[:2] + b"\0\x01", sof(0xC0, 64, 48)), id="length-below-2"),
        pytest.param(jpeg_with(COM, b"garbage", sof(0xC0, 64, 48)), id="not-a-marker"),
        pytest.param(b"\xff\xd8\xff", id="soi-only"),
        pytest.param(jpeg_with(sof(0xC0, 0, 0)), id="zero-size"),
    ],
)
def test_jpeg_without_usable_frame_header_leaves_size_none(data: bytes) -> None:
    assert media_fields(check_bytes(data)) == (None, None, None, None)


def test_jpeg_segment_walk_is_bounded() -> None:
    # thousands of segments before the frame header: the walk gives up, reading a few bytes per segment
    empty_app = segment(0xE5, b"")
    data = b"\xff\xd8" + empty_app * 2000 + sof(0xC0, 64, 48)
    assert media_fields(check_bytes(data)) == (None, None, None, None)
    # the same with full-size (64 KiB) APP1 segments in a 1 GiB "file"
    step = 2 + 0xFFFF
    regions = {0: b"\xff\xd8"} | {2 + i * step: b"\xff\xe1\xff\xff" for i in range(1200)}
    regions[2 + 1200 * step] = sof(0xC0, 64, 48)
    f = CountingFile(2**30, regions)
    report = check_stream(cast(BinaryIO, f), f.size)
    assert report.width is None
    assert f.total_read < 64 * 1024


def wav_bytes(tmp_path: Path, frames: int = 1600) -> bytes:
    path = tmp_path / "a.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\1\2" * frames)
    return path.read_bytes()


def test_wav_ok_truncated_and_padded(tmp_path: Path) -> None:
    data = wav_bytes(tmp_path)
    assert check_bytes(data).ok
    assert check_bytes(data).kind == "wav"
    cut = check_bytes(data[: len(data) // 2])
    assert not cut.ok
    assert any("RIFF header claims" in p for p in cut.problems)
    assert any("chunk 'data'" in p for p in cut.problems)
    assert not check_bytes(data + b"junkjunk").ok


def test_wav_without_data_chunk(tmp_path: Path) -> None:
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    data = b"RIFF" + struct.pack("<I", 4 + len(fmt)) + b"WAVE" + fmt
    report = check_bytes(data)
    assert report.problems == ("no 'data' chunk",)
    assert report.audio_codec == "pcm_s16le" and report.duration_s is None


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"".join(cid + struct.pack("<I", len(c)) + c + b"\0" * (len(c) & 1) for cid, c in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def fmt_chunk(tag: int, bits: int, byte_rate: int = 32000, extra: bytes = b"") -> tuple[bytes, bytes]:
    return b"fmt ", struct.pack("<HHIIHH", tag, 1, 16000, byte_rate, max(1, bits // 8), bits) + extra


def extensible(sub_tag: int, bits: int) -> tuple[bytes, bytes]:
    guid = struct.pack("<H", sub_tag) + b"\0\0\0\0\x10\0\x80\0\0\xaa\0\x38\x9b\x71"
    return fmt_chunk(0xFFFE, bits, extra=struct.pack("<HHI", 22, bits, 4) + guid)


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        (fmt_chunk(1, 16), "pcm_s16le"), (fmt_chunk(1, 8), "pcm_u8"), (fmt_chunk(1, 24), "pcm_s24le"),
        (fmt_chunk(1, 32), "pcm_s32le"), (fmt_chunk(1, 12), "pcm_s16le"), (fmt_chunk(3, 32), "pcm_f32le"),
        (fmt_chunk(6, 8), "pcm_alaw"), (fmt_chunk(7, 8), "pcm_mulaw"), (fmt_chunk(0x11, 4), "adpcm_ima_wav"),
        (fmt_chunk(0x55, 0), "wav_0x0055"), (fmt_chunk(1, 0), "wav_0x0001"),
        (extensible(1, 24), "pcm_s24le"), (extensible(3, 32), "pcm_f32le"),
    ],
)
def test_wav_codec_names_follow_ffprobe(fmt: tuple[bytes, bytes], name: str) -> None:
    report = check_bytes(riff(fmt, (b"data", bytes(16000))))
    assert report.ok, report.problems
    assert report.audio_codec == name
    assert report.duration_s == pytest.approx(0.5)
    assert (report.width, report.height, report.video_codec) == (None, None, None)


def test_wav_duration_needs_a_byte_rate_and_counts_only_bytes_present() -> None:
    no_rate = check_bytes(riff(fmt_chunk(1, 16, byte_rate=0), (b"data", bytes(16000))))
    assert no_rate.ok and no_rate.audio_codec == "pcm_s16le" and no_rate.duration_s is None
    # a recorder that never closed its file leaves the RIFF and data sizes at 0xFFFFFFFF
    open_ended = riff(fmt_chunk(1, 16), (b"LIST", b"INFOjunk"))
    open_ended = open_ended[:4] + b"\xff" * 4 + open_ended[8:]
    open_ended += b"data" + struct.pack("<I", 0xFFFFFFFF) + bytes(64000)
    report = check_bytes(open_ended)
    assert not report.ok
    assert report.duration_s == pytest.approx(2.0)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(riff((b"fmt ", struct.pack("<HH", 1, 1)), (b"data", bytes(100))), id="fmt-too-short"),
        pytest.param(riff((b"data", bytes(100))), id="no-fmt"),
        pytest.param(b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\1\0", id="fmt-cut-by-eof"),
    ],
)
def test_wav_without_usable_fmt_leaves_fields_none(data: bytes) -> None:
    report = check_bytes(data)
    assert report.kind == "wav"
    assert (report.audio_codec, report.duration_s) == (None, None)


def test_unknown_is_ok_unless_a_kind_was_expected(tmp_path: Path) -> None:
    assert check_bytes(b"hello, world\n") == StructureReport("unknown", True, (), None, None)
    assert check_bytes(b"") == StructureReport("unknown", True, (), None, None)
    zeros = tmp_path / "CUT.MP4"
    zeros.write_bytes(bytes(4096))
    report = check_path(zeros)
    assert report.kind == "mp4" and not report.ok
    text = tmp_path / "notes.txt"
    text.write_text("not media")
    assert check_path(text).kind == "unknown"


# --------------------------------------------------------------------------
# real ffmpeg output


@pytest.mark.slow
@pytest.mark.parametrize("faststart", [True, False])
def test_real_mp4_ok_and_cut(tmp_path: Path, faststart: bool) -> None:
    clip = tmp_path / "clip.mp4"
    when = datetime(2023, 12, 31, 23, 59, 58, tzinfo=timezone(timedelta(hours=8)))
    make_video(clip, seconds=2.0, creation_time=when, width=320, height=180, faststart=faststart)
    report = check_path(clip)
    assert report.ok, report.problems
    assert report.creation_time == when
    assert report.duration_s == pytest.approx(2.0, abs=0.1)

    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    damaged = check_path(cut)
    assert damaged.kind == "mp4"
    assert not damaged.ok
    if faststart:
        assert damaged.duration_s == pytest.approx(2.0, abs=0.1)  # the lie ffprobe also tells
    else:
        assert "no 'moov' box" in damaged.problems


@pytest.mark.slow
def test_real_jpeg_and_wav(tmp_path: Path) -> None:
    photo, sound = tmp_path / "p.jpg", tmp_path / "a.wav"
    make_photo(photo, width=320, height=240, when=CREATED)
    make_audio(sound, seconds=1.0, creation_time=CREATED)
    for path, kind in ((photo, "jpeg"), (sound, "wav")):
        report = check_path(path)
        assert (report.kind, report.ok, report.problems, report.creation_time) == (kind, True, (), None)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * 0.6)])
        cut = check_path(path)
        assert not cut.ok
        if kind == "wav":  # only the sound that is left
            assert cut.duration_s is not None and report.duration_s is not None
            assert cut.duration_s < 0.6 * report.duration_s
        else:  # the frame header sits near the start and survives the cut
            assert (cut.width, cut.height) == (320, 240)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("made", "expected"),
    [
        ("faststart.mp4", (320, 180, "h264", "aac")),
        ("tail-moov.mp4", (320, 180, "h264", "aac")),
        ("sound.m4a", (None, None, None, "aac")),
        ("sound.wav", (None, None, None, "pcm_s16le")),
        ("photo.jpg", (352, 288, None, None)),
    ],
)
def test_real_media_reads_like_ffprobe(
    tmp_path: Path, made: str, expected: tuple[int | None, int | None, str | None, str | None]
) -> None:
    path = tmp_path / made
    if made.endswith(".mp4"):
        make_video(path, seconds=1.0, creation_time=CREATED, width=320, height=180,
                   faststart=made.startswith("faststart"))
    elif made.endswith(".jpg"):
        make_photo(path, width=352, height=288, when=CREATED)
    else:
        make_audio(path, seconds=1.5, creation_time=CREATED)
    report, probed = check_path(path), probe(path)
    assert report.ok and probed.ok, (report.problems, probed.error)
    assert media_fields(report) == expected
    assert (report.width, report.height) == (probed.width, probed.height)
    if made.endswith(".jpg"):
        assert probed.video_codec == "mjpeg"  # ffprobe's word for a still; a photo carries none here
    else:
        assert (report.video_codec, report.audio_codec) == (probed.video_codec, probed.audio_codec)
        assert report.duration_s == pytest.approx(probed.duration_s, abs=0.05)
