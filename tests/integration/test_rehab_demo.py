"""The rehabilitation demo step on the demo study (what `make demo` prints for rehab)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

import immunorehab.study.demo as demo
from immunorehab.cli.main import run
from immunorehab.rehab.reports import adherence_report
from immunorehab.study.store import Store


def test_demo_prescribes_logs_flares_stops_and_summarises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo, "DEMO_STEPS", ["immunorehab.rehab.demo:demo_rehab"])
    result = demo.run_demo(tmp_path, n=60, seed=2025, today=dt.date(2026, 11, 22))
    ((name, lines),) = result.steps
    assert name == "immunorehab.rehab.demo:demo_rehab"
    text = "\n".join(lines)
    match = re.search(r"Prescribed (\d+) participants \((\d+) standard, (\d+) pacing", text)
    assert match and int(match[1]) > 20 and int(match[2]) > 0 and int(match[3]) > 0
    sessions = int(re.search(r"imported (\d+) synthetic sessions", text)[1])  # type: ignore[index]
    assert sessions > 300
    assert re.search(r"[1-9]\d* stop-criterion session\(s\) cleared by a physio", text)
    for arm in ("face_to_face", "remote"):
        line = next(line for line in lines if line.strip().startswith(f"{arm}:"))
        assert int(re.search(r"(\d+) PESE", line)[1]) > 0  # type: ignore[index]
        assert "completers" in line
    assert "usual_care:" not in text
    assert (tmp_path / "rehab_adherence.png").exists() and list(tmp_path.glob("rehab_progression_*.png"))
    assert result.audit_check.startswith("intact")

    store = Store.open(f"sqlite:///{result.db_path}")
    try:
        rows, arms = adherence_report(store, by="stats1", today=dt.date(2026, 11, 22))
    finally:
        store.dispose()
    assert {a.arm for a in arms} == {"face_to_face", "remote"}
    assert sum(r.attended for r in rows) < sessions  # some sessions were missed
    assert sum(r.stop_events for r in rows) >= 1

    # the command the step suggests works on the demo database
    command = next(line for line in lines if line.startswith("Try: "))[5:].split()
    capsys.readouterr()
    assert run(command[1:]) == 0
    out = capsys.readouterr().out
    assert "STOP criterion: lowest SpO2" in out and "cleared on" in out
