"""``immunorehab rehab ...`` driven as a physiotherapist would, on SQLite and PostgreSQL.

Also: the blinded roles (lab, assessor) are refused by every rehab command with the same
message whoever asks, and rehabilitation records never show in the audit trail they see.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from immunorehab.cli.main import run
from immunorehab.rehab.service import prescribe
from unit.rehab.rehab_factories import R, randomised_to

TODAY = "2026-05-01"
ARMS = re.compile(r"(?<![\w-])(face_to_face|remote|usual_care)(?![\w-])", re.I)


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IMMUNOREHAB_DEBUG", "IMMUNOREHAB_USER", "IMMUNOREHAB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    url: str
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *args: str, user: str | None = "physio1") -> Result:
        self.capsys.readouterr()
        code = run([*args, "--db", self.url, "--user", user] if user else list(args))
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)


def ok(result: Result) -> str:
    assert result.code == 0, f"exit {result.code}\n{result.out}\n{result.err}"
    return result.out


def fails(result: Result, *needles: str) -> str:
    assert result.code == 1 and result.err.startswith("Error: "), (result.code, result.out, result.err)
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in result.err, (needle, result.err)
    return result.err


@pytest.fixture
def cli(study: Any, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(study.url, capsys)


def _values(day: str, **extra: Any) -> list[str]:
    values = {
        "hr_pre_bpm": 76,
        "hr_peak_bpm": 112,
        "spo2_lowest_pct": 95,
        "borg_dyspnoea": 3.5,
        "rpe": 13,
        "walking_minutes": 10,
        "walking_speed_kmh": 4.2,
        "cycling_minutes": 5,
        "cycling_watts": 20,
        **{
            f"{ex}_{k}": v
            for ex in ("leg_press", "knee_extension", "chest_press")
            for k, v in (("sets", 2), ("reps", 8), ("kg", 27))
        },
        "biceps_curl_sets": 1,
        "biceps_curl_reps": 15,
        "biceps_curl_kg": 18,
        **{
            f"symptoms_{w}_{s}": 3
            for w in ("pre", "24h")
            for s in ("fatigue", "breathlessness", "pain", "cognition")
        },
    }
    values.update(extra)
    args = ["--date", day]
    for key, value in values.items():
        if value is not None:
            args += ["--value", f"{key}={value}"]
    return args


def test_prescribe_log_next_explain_clear(cli: Cli, study: Any, tmp_path: Path) -> None:
    pid = randomised_to(study.store, "face_to_face")
    out = ok(cli("rehab", "prescribe", pid, "--date", str(R), "--today", TODAY))
    assert (
        f"Prescription of {pid} (version 1, {R}, by physio1): programme phosp-r-face-to-face v1.0 "
        "(supervised)" in out
    )
    assert "Mode: standard -- DSQ-PEM negative" in out
    assert "10 min at 4.2 km/h" in out and "level 5 of 15 -> 1.18 m/s" in out
    assert "Stop if HR > 140 bpm (85% of 220 - 55) or SpO2 < 88%." in out  # factories.person: 55 years
    assert "Walking speed method: singh_vo2peak_fraction" in out
    assert "Karvonen 40%-60% of HR reserve" in out

    out = ok(cli("rehab", "next", pid))
    assert f"Next for {pid}: session 1 of 16; mode standard" in out and "starting prescription" in out

    ok(cli("rehab", "log", pid, *_values("2026-02-04"), "--today", TODAY))
    out = ok(
        cli(
            "rehab",
            "log",
            pid,
            *_values(
                "2026-02-07",
                walking_minutes=12,
                spo2_lowest_pct=85,
                stop_criteria="dizziness",
                stopped_during="walking",
            ),
            "--today",
            TODAY,
        )
    )
    assert f"Logged {pid} session 2 on 2026-02-07 (attended)." in out
    out = ok(cli("rehab", "next", pid))
    assert "BLOCKED: clinical review pending for session 2" in out
    assert "step back" in out and "stop_criterion" in out and "10 min at 4.0 km/h" in out

    out = ok(cli("rehab", "explain", pid, "2"))
    assert f"Session 2 of {pid} on 2026-02-07 (attended, supervised); mode standard" in out
    assert "STOP criterion: lowest SpO2 85% < floor 88%; dizziness reported -> clinical review PENDING" in out
    assert "Symptoms 24 h after (PESE if any rise >= 2): fatigue 3 -> 3 (+0)" in out
    assert "session 2 flagged for clinical review" in out

    fails(
        cli("rehab", "clear", pid, "2", "--reason", "ok", user="coord"), "role coordinator", "may not clear"
    )
    out = ok(
        cli(
            "rehab",
            "clear",
            pid,
            "2",
            "--reason",
            "SpO2 recovered at rest; cleared",
            "--date",
            "2026-02-08",
            "--today",
            TODAY,
        )
    )
    assert f"Cleared the clinical review of {pid} session 2 on 2026-02-08 (physio1)." in out
    out = ok(cli("rehab", "explain", pid, "2"))
    assert "cleared on 2026-02-08 by physio1: SpO2 recovered at rest; cleared" in out
    cleared = "session 2 flagged for clinical review; cleared on 2026-02-08 by physio1: progression resumed"
    assert cleared in out
    assert "blocked until" not in out
    assert "BLOCKED" not in ok(cli("rehab", "next", pid))
    audit = ok(cli("audit", pid, user="coord"))
    assert "create rehab_clearance" in audit and "reason: SpO2 recovered at rest; cleared" in audit


def test_refusals_are_clear_and_store_nothing(cli: Cli, study: Any) -> None:
    pid = randomised_to(study.store, "face_to_face")
    prescribe(study.store, by="physio1", participant_id=pid, on=R, today=dt.date(2026, 5, 1))
    err = fails(
        cli(
            "rehab",
            "log",
            pid,
            *_values("2026-02-04", spo2_lowest_pct=120, borg_dyspnoea=11, rpe=25),
            "--today",
            TODAY,
        ),
        f"{pid} session of 2026-02-04 not logged: nothing stored",
        "field spo2_lowest_pct: lowest SpO2 must be 50 to 100 %, got '120'",
        "field borg_dyspnoea: Borg CR10 dyspnoea must be 0 to 10, got '11'",
        "field rpe: RPE (Borg 6-20) must be 6 to 20, got '25'",
    )
    assert err.count("\n  - ") == 3
    fails(
        cli("rehab", "log", pid, *_values("2026-01-20"), "--today", TODAY),
        f"2026-01-20 is before randomisation on {R}",
    )
    assert "session 1 of 16" in ok(cli("rehab", "next", pid))  # nothing was stored
    usual = randomised_to(study.store, "usual_care")
    fails(
        cli("rehab", "prescribe", usual, "--today", TODAY), "arm 'usual_care' has no rehabilitation programme"
    )
    fails(cli("rehab", "log", usual, *_values("2026-02-04"), "--today", TODAY), "usual_care")
    fails(cli("rehab", "explain", pid, "5"), "session 5 is not logged")
    fails(
        cli(
            "visit",
            "record",
            pid,
            "baseline",
            "--date",
            "2026-02-01",
            "--value",
            "iswt_distance_m=-10",
            "--reason",
            "x",
        ),
        "field iswt_distance_m",
        "got -10",
    )


def test_import_followup_ae_reports_card_export(cli: Cli, study: Any, tmp_path: Path) -> None:
    pid = randomised_to(study.store, "face_to_face", pem_positive=True)
    out = ok(cli("rehab", "prescribe", pid, "--date", str(R), "--today", TODAY))
    assert "Mode: pacing -- DSQ-PEM positive: item 2 (frequency 3, severity 2)" in out
    rows = [
        {
            "participant_id": pid,
            "session_date": "2026-02-04",
            "walking_minutes": 5,
            "walking_speed_kmh": 3.0,
            "borg_dyspnoea": 3,
            **{f"symptoms_pre_{s}": 3 for s in ("fatigue", "breathlessness", "pain", "cognition")},
        },
        {"participant_id": pid, "session_date": "2026-02-08", "attended": "no"},
    ]
    path = tmp_path / "sessions.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert (
        ok(cli("rehab", "import", str(path), "--today", TODAY))
        == f"Imported 2 sessions of 1 participants from {path}.\n"
    )
    out = ok(
        cli(
            "rehab",
            "followup",
            pid,
            "1",
            "--value",
            "symptoms_24h_fatigue=6",
            "--value",
            "crash_reported=yes",
        )
    )
    assert "Recorded follow-up of session 1: symptoms_24h_fatigue=6, crash_reported=True" in out
    assert "PESE: crash reported; fatigue 3 -> 6 at 24h (+3 >= 2)" in ok(cli("rehab", "explain", pid, "1"))
    ok(
        cli(
            "rehab",
            "ae",
            pid,
            "1",
            "--term",
            "fatigue crash",
            "--not-serious",
            "--severity",
            "moderate",
            "--related",
            "probable",
        )
    )
    out = ok(cli("rehab", "adherence", "--today", TODAY, user="stats1"))
    assert re.search(rf"{pid}\s+│\s+face_to_face\s+│\s+1/16", out) and "non_completer" in out
    assert "Per arm" in out
    out = ok(cli("rehab", "outcomes", user="stats1"))
    assert "Change from baseline to week8" in out
    card = tmp_path / "card.html"
    assert ok(cli("rehab", "card", pid, str(card))) == f"Wrote the prescription card of {pid} to {card}\n"
    assert "Your programme is <b>paced</b>" in card.read_text()
    fails(cli("rehab", "card", pid, str(card)), "exists: pass --overwrite")
    ok(cli("rehab", "card", pid, str(tmp_path / "card.pdf")))
    assert (tmp_path / "card.pdf").read_bytes()[:4] == b"%PDF"
    assert "Wrote the progression plot" in ok(
        cli("rehab", "plot", pid, str(tmp_path / "p.png"), user="stats1")
    )
    out = ok(
        cli(
            "rehab", "adherence", "--arms", "--plot", str(tmp_path / "a.svg"), "--today", TODAY, user="stats1"
        )
    )
    assert f"Wrote {tmp_path / 'a.svg'}" in out and (tmp_path / "a.svg").exists()
    ok(cli("rehab", "export", str(tmp_path / "sessions.parquet"), user="stats1"))
    frame = pd.read_parquet(tmp_path / "sessions.parquet")
    assert set(frame["session_no"]) == {1, 2} and "ex_prescribed_minutes" in frame.columns


def test_programme_and_fields_commands(cli: Cli, tmp_path: Path) -> None:
    out = ok(cli("rehab", "programme", user=None))
    assert "phosp-r-face-to-face" in out and "phosp-r-remote" in out and out.count(": valid") == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("programme: {id: x}\nschedule: {weeks: 0}\n")
    err = fails(
        cli("rehab", "programme", str(bad), user=None),
        "invalid programme",
        "schedule.weeks: must be an integer >= 1",
    )
    assert "programme.title: required key is missing" in err
    out = ok(cli("rehab", "fields", user=None))
    assert "spo2_lowest_pct" in out and "50-100 %" in out and "leg_press_prescribed_kg" in out


REHAB_COMMANDS: list[tuple[str, ...]] = [
    ("rehab", "prescribe", "{pid}"),
    ("rehab", "prescription", "{pid}"),
    ("rehab", "log", "{pid}", "--date", "2026-02-04"),
    ("rehab", "followup", "{pid}", "1", "--value", "symptoms_24h_fatigue=3"),
    ("rehab", "ae", "{pid}", "1", "--term", "x", "--not-serious"),
    ("rehab", "next", "{pid}"),
    ("rehab", "explain", "{pid}", "1"),
    ("rehab", "clear", "{pid}", "1", "--reason", "x"),
    ("rehab", "adherence"),
    ("rehab", "outcomes"),
    ("rehab", "card", "{pid}", "{out}"),
    ("rehab", "plot", "{pid}", "{out}"),
    ("rehab", "export", "{out}"),
]


def test_blinded_roles_are_refused_by_every_rehab_command(cli: Cli, study: Any, tmp_path: Path) -> None:
    pid = randomised_to(study.store, "face_to_face")
    ok(cli("rehab", "prescribe", pid, "--date", str(R), "--today", TODAY))
    ok(cli("rehab", "log", pid, *_values("2026-02-04"), "--today", TODAY))
    for args in REHAB_COMMANDS:
        argv = [a.format(pid=pid, out=tmp_path / "x.csv") for a in args]
        messages = []
        for user in ("lab1", "assessor1"):
            result = cli(*argv, user=user)
            fails(result, "rehabilitation data reveal the allocated arm")
            assert not ARMS.search(result.out + result.err), (args, result.err)
            messages.append(result.err.replace(user, "U").replace("assessor", "lab"))
        assert messages[0] == messages[1], args
    assert not (tmp_path / "x.csv").exists()
    for user in ("lab1", "assessor1"):
        audit = ok(cli("audit", pid, user=user))
        assert "rehab_" not in audit and "create visit" in audit
    assert "create rehab_session" in ok(cli("audit", pid, user="coord"))
