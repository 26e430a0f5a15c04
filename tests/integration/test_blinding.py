"""Blinded roles (lab, assessor) cannot see allocation through any command.

A study with six participants randomised to all three arms is read through every
command as ``lab1`` and ``assessor1``; no arm id or arm label may appear in what the
command prints or writes. The protocol itself is public (the registered design names
its arms), so the study title and the protocol's arm list printed by ``study show``
are the only places arm names may appear; they are removed before the check and it is
checked that they carry nothing about any participant.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from factories import person
from immunorehab.cli.main import run
from immunorehab.study.allocation import randomise
from immunorehab.study.participants import add_participant, update_participant, withdraw_participant
from immunorehab.study.protocol import load_protocol
from immunorehab.study.visits import record_visit
from testpaths import PHOSP

PROTOCOL = load_protocol(PHOSP)
ARM_IDS = tuple(a.id for a in PROTOCOL.arms)
ARM_LABELS = tuple(a.label for a in PROTOCOL.arms)
#: Public protocol text that legitimately names the arms (not allocation).
PUBLIC_TEXT = (
    "Arms: " + ", ".join(f"{a.id} ({a.label}, ratio {a.ratio})" for a in PROTOCOL.arms),
    PROTOCOL.study.title,
)
ARM_WORD = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, ARM_IDS)) + r")(?![\w-])", re.I)
BLINDED = ("lab1", "assessor1")
UNBLINDED = ("coord", "physio1", "stats1")
TODAY = "2026-03-28"

BASELINE = {
    "iswt_distance_m": 350,
    "eswt_time_s": 420,
    "sts_1min_reps": 22,
    "eq5d5l_index": 0.71,
    "eq_vas": 65,
    "facit_fatigue": 30,
    "c19yrsm_symptom_severity": 12,
    "c19yrsm_functional_disability": 6,
    "c19yrsm_overall_health": 5,
    "dsq_pem_present": "no",
    "blood_drawn": "yes",
    "blood_sample_type": "pbmc",
}


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No debug mode, default user or database from the caller's shell."""
    for name in ("IMMUNOREHAB_DEBUG", "IMMUNOREHAB_USER", "IMMUNOREHAB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def leaks(text: str) -> list[str]:
    """Arm ids (whole words) and arm labels found in ``text`` outside the public protocol text."""
    for public in PUBLIC_TEXT:
        text = text.replace(public, "<protocol>")
    found = [m.group(0) for m in ARM_WORD.finditer(text)]
    found += [label for label in ARM_LABELS if label.lower() in text.lower()]
    return found


def frame_leaks(frame: pd.DataFrame) -> list[str]:
    found = [f"column {c!r}" for c in frame.columns if c == "arm" or ARM_WORD.search(str(c))]
    for column in frame.columns:
        for value in frame[column].dropna().astype(str).unique():
            if value in ARM_IDS or value in ARM_LABELS or leaks(value):
                found.append(f"{column}={value!r}")
    return found


@dataclass(frozen=True)
class Trial:
    url: str
    arms: dict[str, str]  # participant -> arm, as allocated


@pytest.fixture
def trial(study: Any) -> Trial:
    """Six participants randomised (every arm used), one withdrawn, one not yet randomised."""
    store = study.store
    arms: dict[str, str] = {}
    for i in range(6):
        pid = add_participant(store, by="coord", values=person(age_years=40 + i)).participant_id
        result = randomise(store, by="coord", participant_id=pid, on=dt.date(2026, 2, 1))
        arms[pid] = result.arm
    assert set(arms.values()) == set(ARM_IDS), "the fixture must use every arm"
    add_participant(store, by="coord", values=person(age_years=70))  # LEI-0007, eligible, not randomised
    for pid, user in (("LEI-0001", "physio1"), ("LEI-0002", "assessor1")):
        record_visit(
            store,
            by=user,
            participant_id=pid,
            visit_id="baseline",
            visit_date=dt.date(2026, 1, 25),
            values=BASELINE,
        )
    update_participant(
        store, by="coord", participant_id="LEI-0003", changes={"vaccination_doses": 4}, reason="GP record"
    )
    withdraw_participant(
        store, by="coord", participant_id="LEI-0004", reason="moved away", on=dt.date(2026, 3, 1)
    )
    return Trial(study.url, arms)


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    file: Path | None


def run_as(
    trial: Trial, capsys: pytest.CaptureFixture[str], tmp_path: Path, user: str, args: tuple[str, ...]
) -> Outcome:
    out_file = None
    argv = []
    for arg in args:
        if arg.startswith("{out}"):
            out_file = tmp_path / f"{user}{arg[5:]}"
            arg = str(out_file)
        argv.append(arg)
    capsys.readouterr()
    code = run([*argv, "--db", trial.url, "--user", user])
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err, out_file)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# Each case: arguments, and a check that the command really ran (so "no leak" is not vacuous).
Check = Callable[[Outcome], None]


def _prints(*needles: str) -> Check:
    def check(o: Outcome) -> None:
        assert o.code == 0, o.err
        for needle in needles:
            assert needle in o.out, f"{needle!r} not in:\n{o.out}"

    return check


def _writes(rows: int, *columns: str) -> Check:
    def check(o: Outcome) -> None:
        assert o.code == 0, o.err
        assert o.file is not None and o.file.exists()
        frame = _read(o.file)
        assert len(frame) == rows
        assert set(columns) <= set(frame.columns)
        assert not (leaks := frame_leaks(frame)), leaks

    return check


def _refused(action: str, *, after: str = "") -> Check:
    """Exit 1 with a permission error; ``after``: what was printed before the refusal."""

    def check(o: Outcome) -> None:
        assert o.code == 1
        assert o.err.startswith("Error: user '") and action in o.err, o.err
        assert after in o.out if after else o.out == ""

    return check


VISIT_ROWS = 2 * len(BASELINE)
CASES: dict[str, tuple[tuple[str, ...], Check]] = {
    "participant list": (("participant", "list"), _prints("7 participants", "(blinded)", "LEI-0007")),
    "audit": (("audit",), _prints("create allocation 6", "update participant LEI-0003", "<concealed>")),
    "audit PID": (("audit", "LEI-0001"), _prints("Audit trail of LEI-0001", "create allocation 1")),
    "visits due --all": (
        ("visits", "due", "--all", "--today", TODAY),
        _prints("LEI-0006", "completed", "withdrawn", "not_randomised"),
    ),
    "visits schedule PID": (
        ("visits", "schedule", "LEI-0001", "--today", TODAY),
        _prints("Schedule of LEI-0001", "month24"),
    ),
    "study show": (("study", "show"), _prints("Study 'phosp-r-immune'")),
    "export participants csv": (
        ("export", "participants", "{out}-p.csv"),
        _writes(7, "participant_id", "randomised_on"),
    ),
    "export visits parquet": (
        ("export", "visits", "{out}-v.parquet"),
        _writes(VISIT_ROWS, "measure_id", "value"),
    ),
    "export redcap-dictionary": (
        ("export", "redcap-dictionary", "{out}-dict.csv"),
        _writes(1 + 11 + sum(len(v.measures) for v in PROTOCOL.visits), "Variable / Field Name"),
    ),
    "randomise --balance": (("randomise", "--balance"), _refused("may not see allocation balance")),
    "randomise --verify --balance": (
        ("randomise", "--verify", "--balance"),
        _refused("may not see allocation balance", after="6 allocations verified"),
    ),
    "randomise randomised PID": (("randomise", "LEI-0001"), _refused("may not randomise participants")),
    "randomise new PID": (("randomise", "LEI-0007"), _refused("may not randomise participants")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_blinded_roles_cannot_see_allocation(
    case: str, trial: Trial, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args, check = CASES[case]
    messages = []
    for user in BLINDED:
        outcome = run_as(trial, capsys, tmp_path, user, args)
        check(outcome)
        assert not (found := leaks(outcome.out + outcome.err)), f"{user} `{case}` shows {found}"
        assert "Traceback" not in outcome.err
        if case == "study show":
            assert not re.search(r"[A-Z]{3}-\d{4}", outcome.out)  # nothing about participants
        messages.append(outcome.err.replace(user, "<user>").replace("assessor", "lab"))
    # a refusal does not depend on who asks (and reveals nothing about the participant)
    assert messages[0] == messages[1]


def test_refused_randomise_allocates_nothing(
    trial: Trial, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for user in BLINDED:
        assert run_as(trial, capsys, tmp_path, user, ("randomise", "LEI-0007")).code == 1
    out = run_as(trial, capsys, tmp_path, "coord", ("participant", "list")).out
    row = next(line for line in out.splitlines() if "LEI-0007" in line)
    assert not leaks(row) and " - " in row


def test_unblinded_roles_see_arms(trial: Trial, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The same commands show allocation to unblinded roles (so the checks above can see a leak)."""
    for user in UNBLINDED:
        out = run_as(trial, capsys, tmp_path, user, ("participant", "list")).out
        shown = {}
        for line in out.splitlines():
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            if len(cells) == 9 and re.fullmatch(r"LEI-\d{4}", cells[0]):
                shown[cells[0]] = cells[7]
        assert shown == {**trial.arms, "LEI-0007": "-"}, user
        outcome = run_as(trial, capsys, tmp_path, user, ("export", "participants", "{out}.csv"))
        assert outcome.code == 0 and outcome.file is not None
        frame = _read(outcome.file).set_index("participant_id")
        assert {pid: frame.loc[pid, "arm"] for pid in trial.arms} == trial.arms
        balance = run_as(trial, capsys, tmp_path, user, ("randomise", "--balance"))
        assert balance.code == 0 and "Allocation balance per stratum (6 randomised)" in balance.out
        assert set(ARM_IDS) <= {m.lower() for m in ARM_WORD.findall(balance.out)}
    # the leak detectors fire on what an unblinded user gets
    for args in (("participant", "list"), ("audit", "LEI-0001")):
        assert leaks(run_as(trial, capsys, tmp_path, "coord", args).out), args
    for args in (("export", "participants", "{out}-p.parquet"), ("export", "visits", "{out}-v.csv")):
        outcome = run_as(trial, capsys, tmp_path, "coord", args)
        assert outcome.file is not None and frame_leaks(_read(outcome.file)), args
