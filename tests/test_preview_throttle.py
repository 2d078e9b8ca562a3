"""The ingest gate of background previews (#7): what it decides (pure), and that its
actions never leave an ffmpeg stopped nor let a throttled run time out."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import proc_state, wait_for

from vaultd import config as config_mod
from vaultd import media
from vaultd.config import PreviewConfig
from vaultd.errors import ConfigError
from vaultd.media import MediaToolError
from vaultd.preview import THROTTLE_PERIOD_S, Throttle, throttle_for

# -- decisions -------------------------------------------------------------------------

def test_without_ingest_background_previews_run_throughout() -> None:
    for cfg in (PreviewConfig(), PreviewConfig(pause_during_ingest=True), PreviewConfig(ingest_run_pct=0)):
        plan = throttle_for(False, cfg)
        assert plan == Throttle(THROTTLE_PERIOD_S, 0.0, held=False) and not plan.stopped


@pytest.mark.parametrize(("pct", "run_s", "stop_s"), [(100, 1.0, 0.0), (75, 0.75, 0.25), (40, 0.4, 0.6),
                                                       (0, 0.0, 1.0)])
def test_during_ingest_ffmpeg_runs_its_share_of_each_period(pct: int, run_s: float, stop_s: float) -> None:
    plan = throttle_for(True, PreviewConfig(ingest_run_pct=pct), period_s=1.0)
    assert plan.held and (plan.run_s, plan.stop_s) == pytest.approx((run_s, stop_s))
    assert plan.stopped is (pct == 0)  # only 0 % keeps new jobs from starting


def test_pause_during_ingest_stops_previews_outright_whatever_the_share() -> None:
    plan = throttle_for(True, PreviewConfig(pause_during_ingest=True, ingest_run_pct=80))
    assert plan.stopped and plan.held and plan.run_s == 0


def test_the_default_gate_lets_previews_run_during_ingest() -> None:
    cfg = config_mod.from_dict({}, "x").preview
    assert not cfg.pause_during_ingest and not throttle_for(True, cfg).stopped
    old = config_mod.from_dict({"preview": {"pause_during_ingest": True}}, "x").preview  # the old key still works
    assert throttle_for(True, old).stopped


@pytest.mark.parametrize("value", [-1, 101, 50.5, "50", True])
def test_bad_ingest_run_pct_names_the_key(value: object) -> None:
    with pytest.raises(ConfigError, match="preview.ingest_run_pct"):
        config_mod.from_dict({"preview": {"ingest_run_pct": value}}, "test.toml")


# -- actions ---------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def released() -> Iterator[None]:
    media.release_background()
    yield
    media.release_background()
    assert not media.background_held() and not media.background_paused()


def _background(argv: list[str], timeout_s: float) -> tuple[threading.Thread, dict[str, object]]:
    """Runs ``argv`` as a background preview run in a thread; the result lands in the dict."""
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["result"] = media._wait(argv, timeout_s, True)
        except MediaToolError as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _pid_of_the_run() -> int:
    procs = wait_for(lambda: set(media._BACKGROUND.procs), 5, "the run to start")
    return int(next(iter(procs)).pid)


def test_a_run_held_back_for_ingest_does_not_time_out() -> None:
    media.hold_background(True)  # ingest runs: the gate holds previews back (throttled)
    thread, out = _background(["sleep", "1.5"], timeout_s=0.5)
    thread.join(10)
    assert out.get("result", (b"", 1))[1] == 0 and "error" not in out


def test_time_stopped_does_not_count_but_running_time_does() -> None:
    media.pause_background()
    thread, out = _background(["sleep", "30"], timeout_s=0.5)
    time.sleep(2.0)
    assert "error" not in out and thread.is_alive()  # 2 s stopped: not timed out
    media.resume_background()
    thread.join(10)
    assert isinstance(out.get("error"), MediaToolError)  # then 0.5 s of running: timed out


def test_a_run_that_times_out_is_killed_even_between_stops() -> None:
    thread, out = _background(["sleep", "30"], timeout_s=0.3)
    pid = _pid_of_the_run()
    media.pause_background()
    media.resume_background()
    thread.join(10)
    assert isinstance(out.get("error"), MediaToolError) and not Path(f"/proc/{pid}").exists()


def test_the_gate_never_leaves_ffmpeg_stopped_when_it_ends(home: Path) -> None:
    from vaultd.previewwork import Worker
    from vaultd.vault import open_vault

    vault = open_vault(home)
    try:
        worker = Worker(vault, workers=1, busy=lambda: True)
        worker.cfg = replace(worker.cfg, ingest_run_pct=30)
        thread, out = _background(["sleep", "30"], timeout_s=60)
        pid = _pid_of_the_run()
        stop = threading.Event()
        gate = threading.Thread(target=worker._watch_ingest, args=(stop,), daemon=True)
        gate.start()
        seen = set()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(seen) < 2:  # the duty cycle stops and continues it
            seen.add(proc_state(pid))
            time.sleep(0.01)
        assert {"T", "S"} <= seen or {"t", "S"} <= seen
        assert media.background_held()
        stop.set()  # the daemon stops
        gate.join(5)
        assert proc_state(pid) == "S" and not media.background_held()
    finally:
        media.release_background()
        for proc in list(media._BACKGROUND.procs):
            proc.kill()
        thread.join(10)
        vault.close()


def test_full_pause_holds_new_runs_and_releases_them() -> None:
    media.hold_background(True, stop_new=True)
    media.pause_background()
    assert media.background_paused()
    thread, _out = _background(["sleep", "5"], timeout_s=60)
    pid = _pid_of_the_run()
    time.sleep(0.2)
    assert proc_state(pid) in ("T", "t")  # a run started while paused starts stopped
    media.release_background()
    time.sleep(0.1)
    assert proc_state(pid) == "S"
    for proc in list(media._BACKGROUND.procs):
        proc.kill()
    thread.join(10)


def test_a_failing_ingest_check_never_holds_previews_back(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    from vaultd.previewwork import Worker
    from vaultd.vault import open_vault

    def broken() -> bool:
        raise RuntimeError("the daemon's session table is gone")

    vault = open_vault(home)
    try:
        media.hold_background(True, stop_new=True)  # as a stop left by an ingest the check can no longer see
        media.pause_background()
        worker = Worker(vault, workers=1, busy=broken)
        stop = threading.Event()
        gate = threading.Thread(target=worker._watch_ingest, args=(stop,), daemon=True)
        gate.start()
        wait_for(lambda: not media.background_held() and not media.background_paused(), 5,
                 "the gate to let previews run")
        assert "ingest check of the preview worker failed" in caplog.text
        stop.set()
        gate.join(5)
    finally:
        vault.close()
