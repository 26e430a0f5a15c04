"""The ``immunorehab`` command driven as a user would: ``run([...])`` with ``--db`` and ``--user``.

Every test gets a fresh study database (SQLite and PostgreSQL through ``db_url``) and
checks what the user sees: stdout, the one ``Error: ...`` message on stderr, the exit
code, and that a refused command leaves the database as it was.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer.main

from factories import person
from immunorehab.cli.main import app, run
from immunorehab.errors import DataValidationError, NotFoundError
from immunorehab.study.participants import list_participants
from testpaths import PHOSP, TWO_ARM

ARMS = ("face_to_face", "remote", "usual_care")
ALLOCATED = re.compile(r"^(?P<pid>[A-Z]{3}-\d{4}) allocated to (?P<arm>\w+) \((?P<label>[^)]*)", re.M)

#: Valid values for every measure of the PHOSP-R baseline visit.
BASELINE = {
    "iswt_distance_m": "350",
    "eswt_time_s": "420",
    "sts_1min_reps": "22",
    "eq5d5l_index": "0.71",
    "eq_vas": "65",
    "facit_fatigue": "30",
    "c19yrsm_symptom_severity": "12",
    "c19yrsm_functional_disability": "6",
    "c19yrsm_overall_health": "5",
    "dsq_pem_present": "no",
    "blood_drawn": "yes",
    "blood_sample_type": "pbmc",
    "hours_since_exercise": "48",
}


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No debug mode, default user or database from the caller's shell."""
    for name in ("IMMUNOREHAB_DEBUG", "IMMUNOREHAB_USER", "IMMUNOREHAB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


class Cli:
    """Runs the CLI in-process against one study database, capturing its output."""

    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.capsys = capsys

    def __call__(self, *args: str, user: str | None = "coord", db: bool = True) -> Result:
        argv = list(args)
        if db:
            argv += ["--db", self.url]
        if user is not None:
            argv += ["--user", user]
        self.capsys.readouterr()
        code = run(argv)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)


@pytest.fixture
def cli(study: Any, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(study.url, capsys)


def ok(result: Result) -> str:
    assert result.code == 0, f"exit {result.code}\nstdout:\n{result.out}\nstderr:\n{result.err}"
    assert result.err == ""
    return result.out


def fails(result: Result, *needles: str) -> str:
    """A refused command: exit 1, an ``Error:`` message naming every needle, no traceback."""
    assert result.code == 1, f"exit {result.code}\nstdout:\n{result.out}\nstderr:\n{result.err}"
    assert result.err.startswith("Error: "), result.err
    assert "Traceback" not in result.err + result.out
    for needle in needles:
        assert needle in result.err, f"{needle!r} not in {result.err!r}"
    return result.err


def add_args(**overrides: Any) -> list[str]:
    """``participant add`` arguments for :func:`factories.person` (None = option left out)."""
    args = ["participant", "add"]
    for key, value in person(**overrides).items():
        if value is not None:
            args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def table_rows(out: str) -> list[list[str]]:
    """Body rows of the rich tables in ``out`` as lists of stripped cells."""
    return [
        [c.strip() for c in line.strip().strip("│").split("│")] for line in out.splitlines() if "│" in line
    ]


def table_header(out: str) -> list[str]:
    line = next(line for line in out.splitlines() if "┃" in line)
    return [c.strip() for c in line.strip().strip("┃").split("┃")]


def participant_rows(cli: Cli, user: str = "coord") -> dict[str, dict[str, str]]:
    out = ok(cli("participant", "list", user=user))
    header = table_header(out)
    return {row[0]: dict(zip(header, row, strict=True)) for row in table_rows(out)}


def enrol(cli: Cli, **overrides: Any) -> str:
    out = ok(cli(*add_args(**overrides)))
    match = re.search(r"Enrolled ([A-Z]{3}-\d{4}):", out)
    assert match, out
    return match.group(1)


def randomise(cli: Cli, pid: str, date: str = "2026-02-01") -> str:
    match = ALLOCATED.search(ok(cli("randomise", pid, "--date", date)))
    assert match and match["pid"] == pid
    return match["arm"]


# --- study, protocol, users -------------------------------------------------------------


def test_study_create_then_show(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(db_url, capsys)
    out = ok(cli("study", "create", str(PHOSP), "--admin", "admin", "--seed", "77", user=None))
    assert "Created study 'phosp-r-immune'" in out and "admin user 'admin'" in out
    assert "77" not in out  # the seed is concealed, even at creation
    out = ok(cli("study", "show", user="admin"))
    assert "Study 'phosp-r-immune'" in out
    assert "Arms: face_to_face (Face-to-face rehabilitation, ratio 1), remote (" in out
    assert "seed" not in out.lower()
    fails(
        cli("study", "create", str(TWO_ARM), "--admin", "admin", user=None),
        "already holds study 'phosp-r-immune'",
    )
    assert "Study 'phosp-r-immune'" in ok(cli("study", "show", user="admin"))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            PHOSP,
            "study 'phosp-r-immune' v1.0, 3 arms (1:1:1), 2 stratification factor(s), "
            "randomisation permuted_blocks",
        ),
        (
            TWO_ARM,
            "study 'rehab-immune-2arm' v0.1, 2 arms (1:1), 3 stratification factor(s), "
            "randomisation minimisation",
        ),
    ],
)
def test_protocol_check_ok(path: Path, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(Cli("", capsys)("protocol", "check", str(path), db=False, user=None))
    assert out.startswith(f"OK {path}")
    assert expected in " ".join(out.split())


def test_protocol_check_lists_every_problem_with_key_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PHOSP.read_text(encoding="utf-8")
    edits = {
        '  version: "1.0"\n': '  version: "1.0"\n  versoin: "1.1"\n',
        '{id: remote, label: "Remote rehabilitation (NHS Your COVID Recovery)", ratio: 1}': (
            '{id: remote, label: "Remote rehabilitation (NHS Your COVID Recovery)", ratio: 0}'
        ),
        "method: permuted_blocks": "method: permuted_blockz",
    }
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    bad = tmp_path / "bad_protocol.yaml"
    bad.write_text(text, encoding="utf-8")
    result = Cli("", capsys)("protocol", "check", str(bad), db=False, user=None)
    err = fails(result, "invalid protocol (3 problems)", "study.versoin", "unknown key 'versoin'")
    assert result.out == ""
    problems = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3
    assert all(line.startswith(f"  - {bad}: ") for line in problems)
    assert any("arms[1].ratio" in line and "got 0" in line for line in problems)
    assert any("randomisation.method" in line and "permuted_blockz" in line for line in problems)


@pytest.mark.parametrize(
    ("content", "needle"), [(None, "not found"), ("study: [\n", "is not valid YAML")], ids=["missing", "yaml"]
)
def test_protocol_check_unreadable_file(
    content: str | None, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    fails(Cli("", capsys)("protocol", "check", str(path), db=False, user=None), needle)


def test_user_add_and_list(cli: Cli) -> None:
    assert ok(cli("user", "add", "nurse2", "--role", "physio", user="admin")) == (
        "Added user 'nurse2' with role physio.\n"
    )
    users = {row[0]: row[1:] for row in table_rows(ok(cli("user", "list", user="admin")))}
    assert users["nurse2"] == ["physio", "yes"]
    assert users["lab1"] == ["lab", "yes"] and users["admin"] == ["admin", "yes"]
    # the new user can act with their role at once
    assert "Study 'phosp-r-immune'" in ok(cli("study", "show", user="nurse2"))

    fails(cli("user", "add", "nurse3", "--role", "physio", user="coord"), "role coordinator", "add users")
    fails(cli("user", "add", "nurse4", "--role", "surgeon", user="admin"), "'surgeon'", "coordinator")
    fails(cli("user", "add", "nurse2", "--role", "lab", user="admin"), "'nurse2' already exists")
    fails(cli("user", "add", "Jane Smith", "--role", "lab", user="admin"), "not valid")
    fails(cli("study", "show", user="nobody"), "unknown or inactive user 'nobody'")
    users = {row[0]: row[1:] for row in table_rows(ok(cli("user", "list", user="admin")))}
    assert set(users) == {"admin", "coord", "physio1", "lab1", "stats1", "assessor1", "nurse2"}
    assert users["nurse2"] == ["physio", "yes"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # CLI-only behaviour
def test_user_list_is_admin_only(cli: Cli) -> None:
    fails(cli("user", "list", user="coord"), "role coordinator")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # CLI-only behaviour
def test_missing_user_is_one_clear_error(cli: Cli) -> None:
    fails(cli("participant", "list", user=None), "no user given", "--user")


# --- participants -----------------------------------------------------------------------


def test_participant_add_prints_id_and_eligibility(cli: Cli) -> None:
    assert ok(cli(*add_args())) == "Enrolled LEI-0001: eligible\n"
    assert ok(cli(*add_args(hospitalised="no"))) == "Enrolled LEI-0002: NOT eligible (fails hospitalised)\n"
    assert ok(cli(*add_args(site="HAR", days_since_infection=30))) == (
        "Enrolled HAR-0001: NOT eligible (fails post_covid_syndrome)\n"
    )
    rows = participant_rows(cli)
    assert list(rows) == ["HAR-0001", "LEI-0001", "LEI-0002"]
    assert rows["LEI-0001"]["age"] == "55" and rows["LEI-0001"]["sex"] == "female"
    assert rows["LEI-0002"]["eligible"] == "no: hospitalised"
    assert rows["LEI-0001"]["arm"] == "-" and rows["LEI-0001"]["status"] == "active"
    fails(cli(*add_args(), user="physio1"), "role physio", "enrol participants")


def test_participant_add_invalid_values_names_both_fields_and_stores_nothing(cli: Cli, study: Any) -> None:
    err = fails(cli(*add_args(age_years="abc", sex="x")), "field age_years", "'abc'", "field sex", "'x'")
    assert len([line for line in err.splitlines() if line.startswith("  - ")]) == 2
    out = ok(cli("participant", "list"))
    assert "0 participants" in out and table_rows(out) == []
    assert list_participants(study.store, by="coord") == []
    # the next valid participant still gets the first ID: the failed add consumed nothing
    assert enrol(cli) == "LEI-0001"


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_participant_import(cli: Cli, tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame([person(age_years=30 + i, site="HAR" if i % 5 == 0 else "LEI") for i in range(25)])
    path = _write(frame, tmp_path / f"people{suffix}")
    assert ok(cli("participant", "import", str(path))) == "Imported 25 participants (HAR-0001 .. LEI-0020).\n"
    rows = participant_rows(cli)
    assert len(rows) == 25
    assert rows["HAR-0001"]["age"] == "30" and rows["LEI-0001"]["age"] == "31"
    assert rows["LEI-0020"]["age"] == "54" and rows["HAR-0005"]["age"] == "50"
    assert all(r["eligible"] == "yes" for r in rows.values())
    # a second import continues each site's sequence
    again = _write(frame.head(2), tmp_path / f"more{suffix}")
    assert ok(cli("participant", "import", str(again))) == "Imported 2 participants (HAR-0006 .. LEI-0021).\n"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_participant_import_is_all_or_nothing(cli: Cli, study: Any, tmp_path: Path, suffix: str) -> None:
    records = [person(age_years=30 + i) for i in range(25)]
    records[23].update(age_years=150, sex="x")  # the 24th of 25 rows
    path = _write(pd.DataFrame(records), tmp_path / f"people{suffix}")
    # CSV rows are numbered as in a spreadsheet (header = row 1); Parquet rows from 1.
    row = "row 25" if suffix == ".csv" else "row 24"
    err = fails(
        cli("participant", "import", str(path)),
        "nothing imported; 2 problem(s)",
        f"people{suffix} {row}, field age_years: expected a whole number from 0 to 120, got 150",
        f"people{suffix} {row}, field sex",
    )
    assert len([line for line in err.splitlines() if line.startswith("  - ")]) == 2
    assert "0 participants" in ok(cli("participant", "list"))
    assert list_participants(study.store, by="coord") == []


def test_participant_import_refuses_identifier_columns(cli: Cli, study: Any, tmp_path: Path) -> None:
    frame = pd.DataFrame([person(), person(age_years=70)])
    frame["name"] = ["Ann Example", "Bob Example"]
    frame["email"] = ["a@example.org", "b@example.org"]
    path = _write(frame, tmp_path / "people.csv")
    err = fails(cli("participant", "import", str(path)), "nothing imported; 2 problem(s)")
    for column in ("name", "email"):
        assert (
            f"people.csv, column '{column}': is not a participant field (no names or contact details" in err
        )
    assert "Ann Example" not in err and "a@example.org" not in err
    assert list_participants(study.store, by="coord") == []
    # the same rows without the identifiers import
    path = _write(frame.drop(columns=["name", "email"]), tmp_path / "people.parquet")
    assert "Imported 2 participants" in ok(cli("participant", "import", str(path)))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # CLI-only behaviour
def test_participant_import_unknown_file_type(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "people.xlsx"
    path.write_bytes(b"PK")
    fails(cli("participant", "import", str(path)), "unsupported file type '.xlsx'")
    fails(cli("participant", "import", str(tmp_path / "nope.csv")), "file not found")


def test_participant_update_is_audited_with_reason(cli: Cli) -> None:
    pid = enrol(cli)
    out = ok(
        cli("participant", "update", pid, "--set", "age_years=60", "--reason", "CRF transcription error")
    )
    assert out == "LEI-0001 age_years: 55 -> 60\n"
    assert participant_rows(cli)[pid]["age"] == "60"
    audit = ok(cli("audit", pid))
    assert "Audit trail of LEI-0001: 2 events" in audit
    update = [line for line in audit.splitlines() if " update participant LEI-0001" in line]
    assert len(update) == 1 and update[0].endswith("reason: CRF transcription error")
    assert " coord " in update[0]
    assert "age_years: 55 -> 60" in audit

    fails(cli("participant", "update", pid, "--set", "age_years=61"), "reason is required", "--reason")
    fails(
        cli("participant", "update", pid, "--set", "age_years=200", "--reason", "x"), "field age_years", "200"
    )
    fails(cli("participant", "update", pid, "--set", "name=Ann", "--reason", "x"), "field name")
    assert participant_rows(cli)[pid]["age"] == "60"
    assert "Audit trail of LEI-0001: 2 events" in ok(cli("audit", pid))


def test_participant_update_re_evaluates_eligibility(cli: Cli) -> None:
    pid = enrol(cli, hospitalised="no")
    fails(cli("randomise", pid), "not eligible", "hospitalised")
    ok(cli("participant", "update", pid, "--set", "hospitalised=yes", "--reason", "discharge letter found"))
    assert participant_rows(cli)[pid]["eligible"] == "yes"
    assert randomise(cli, pid) in ARMS


def test_withdrawn_participant_cannot_be_randomised(cli: Cli) -> None:
    pid = enrol(cli)
    fails(cli("participant", "withdraw", pid), "withdrawal reason is required")
    out = ok(cli("participant", "withdraw", pid, "--reason", "moved abroad", "--date", "2026-01-20"))
    assert out == "LEI-0001 withdrawn.\n"
    assert participant_rows(cli)[pid]["status"] == "withdrawn 2026-01-20"
    err = fails(cli("randomise", pid), "withdrawn on 2026-01-20", "moved abroad")
    assert "allocated" not in err
    assert participant_rows(cli)[pid]["randomised"] == "-"
    fails(cli("participant", "withdraw", pid, "--reason", "again"), "already withdrawn")


# --- randomisation ----------------------------------------------------------------------


def test_randomise_prints_arm_once(cli: Cli, tmp_path: Path) -> None:
    pid = enrol(cli)
    out = ok(cli("randomise", pid, "--date", "2026-02-01"))
    match = ALLOCATED.search(out)
    assert match is not None and match["pid"] == "LEI-0001"
    arm = match["arm"]
    assert arm in ARMS
    assert "on 2026-02-01; sequence 1, stratum age_band=<60|acute_severity=ward" in out
    rows = participant_rows(cli)
    assert rows[pid]["arm"] == arm and rows[pid]["randomised"] == "2026-02-01"

    fails(cli("randomise", pid), "already randomised on 2026-02-01", "at most once")
    fails(cli("randomise", pid, user="physio1"), "role physio", "randomise participants")
    assert participant_rows(cli)[pid]["arm"] == arm
    assert "Allocation chain intact: 1 allocations verified" in ok(cli("randomise", "--verify"))


def test_randomise_refuses_ineligible_and_unconsented(cli: Cli) -> None:
    ineligible = enrol(cli, hospitalised="no")
    err = fails(cli("randomise", ineligible), "not eligible", "hospitalised (")
    assert "post_covid_syndrome" not in err and "adult" not in err
    two = enrol(cli, age_years=17, days_since_infection=30)
    fails(cli("randomise", two), "adult (", "post_covid_syndrome (")
    unconsented = enrol(cli, consent_date=None)
    fails(cli("randomise", unconsented), "no consent date")
    fails(cli("randomise", "LEI-0999"), "no participant 'LEI-0999'")
    fails(cli("randomise", user="coord"), "PARTICIPANT_ID")
    out = ok(cli("randomise", "--verify"))
    assert "Allocation chain intact: 0 allocations verified" in out
    assert {r["randomised"] for r in participant_rows(cli).values()} == {"-"}


def test_randomise_balance_and_verify(cli: Cli) -> None:
    people = [
        enrol(cli, age_years=55, who_severity=5),
        enrol(cli, age_years=65, who_severity=5),
        enrol(cli, age_years=45, who_severity=7, icu_admitted="yes", invasive_ventilation="yes"),
        enrol(cli, age_years=40, who_severity=4),
        enrol(cli, age_years=70, who_severity=6),
    ]
    arms = [randomise(cli, pid) for pid in people]
    out = ok(cli("randomise", "--verify", "--balance"))
    assert "Allocation chain intact: 5 allocations verified" in out
    assert "Allocation balance per stratum (5 randomised)" in out
    balance, margins = out.split("Balance by factor level (margins)")
    header = table_header(balance)
    assert header == ["acute_severity", "age_band", *ARMS, "total"]
    rows = [dict(zip(header, r, strict=True)) for r in table_rows(balance)]
    overall = next(r for r in rows if r["acute_severity"] == "overall")
    assert {a: int(overall[a]) for a in ARMS} == {a: arms.count(a) for a in ARMS}
    assert overall["total"] == "5"
    strata = {(r["acute_severity"], r["age_band"]): int(r["total"]) for r in rows if r is not overall}
    assert strata == {("ward", "<60"): 2, ("ward", ">=60"): 1, ("hdu_icu", "<60"): 1, ("hdu_icu", ">=60"): 1}
    assert table_header(margins) == ["factor", "level", *ARMS, "max diff"]
    assert {(r[0], r[1]): sum(map(int, r[2:5])) for r in table_rows(margins)} == {
        ("acute_severity", "hdu_icu"): 2,
        ("acute_severity", "ward"): 3,
        ("age_band", "<60"): 3,
        ("age_band", ">=60"): 2,
    }
    # balance is for unblinded roles only
    fails(cli("randomise", "--balance", user="lab1"), "role lab")


def test_randomise_is_reproducible_from_the_seed(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same seed and enrolment order give the same allocations in another database."""
    other = Cli(f"sqlite:///{tmp_path / 'again.db'}", capsys)
    ok(other("study", "create", str(PHOSP), "--admin", "admin", "--seed", "12345", user=None))
    ok(other("user", "add", "coord", "--role", "coordinator", user="admin"))
    people = _write(pd.DataFrame([person(age_years=30 + i) for i in range(6)]), tmp_path / "people.csv")
    pids = [f"LEI-000{i}" for i in range(1, 7)]
    runs = []
    for c in (cli, other):
        ok(c("participant", "import", str(people)))
        runs.append([randomise(c, pid) for pid in pids])
        assert [participant_rows(c)[p]["arm"] for p in pids] == runs[-1]
    assert runs[0] == runs[1]
    # one stratum, blocks of 3 or 6: the first block holds every arm equally often
    arms = runs[0]
    assert sorted(arms[:3]) == sorted(ARMS) or sorted(arms) == sorted(ARMS * 2)


# --- visits -----------------------------------------------------------------------------


def _values(**overrides: str) -> list[str]:
    values = {**BASELINE, **overrides}
    return [arg for key, value in values.items() for arg in ("--value", f"{key}={value}")]


def test_visits_due_and_schedule(cli: Cli) -> None:
    pid = enrol(cli)
    enrol(cli, hospitalised="no")  # a screen failure has no visits
    randomise(cli, pid, "2026-02-01")
    out = ok(cli("visits", "due", "--today", "2026-03-28"))
    assert "Visits as of 2026-03-28: 1 due, 1 overdue, 0 out of window" in out
    assert table_rows(out) == [
        ["LEI-0001", "baseline", "2026-02-01", "2026-01-18 .. 2026-02-01", "overdue", "-"],
        ["LEI-0001", "week8", "2026-03-29", "2026-03-22 .. 2026-04-05", "due", "-"],
    ]
    out = ok(cli("visits", "schedule", "lei-0001", "--today", "2026-03-28"))
    assert "Schedule of LEI-0001 as of 2026-03-28" in out
    assert [(r[1], r[2], r[4]) for r in table_rows(out)] == [
        ("baseline", "2026-02-01", "overdue"),
        ("week8", "2026-03-29", "due"),
        ("month3", "2026-05-03", "upcoming"),
        ("month6", "2026-08-02", "upcoming"),
        ("month12", "2027-02-01", "upcoming"),
        ("month24", "2028-02-01", "upcoming"),
    ]
    fails(cli("visits", "due", "--today", "28/03/2026"), "--today must be a date as YYYY-MM-DD")
    fails(cli("visits", "schedule", "LEI-0042"), "no participant 'LEI-0042'")


def test_visit_record_and_re_record(cli: Cli) -> None:
    pid = enrol(cli)
    randomise(cli, pid, "2026-02-01")
    out = ok(cli("visit", "record", pid, "baseline", "--date", "2026-01-25", *_values(), user="physio1"))
    assert out == "Recorded LEI-0001 baseline on 2026-01-25: completed\n"
    due = ok(cli("visits", "due", "--today", "2026-03-28", "--all"))
    assert "1 due, 0 overdue, 0 out of window" in due
    assert ["LEI-0001", "baseline", "2026-02-01", "2026-01-18 .. 2026-02-01", "completed", "2026-01-25"] in (
        table_rows(due)
    )

    fails(
        cli("visit", "record", pid, "baseline", "--date", "2026-01-26", *_values(eq_vas="70")),
        "already recorded on 2026-01-25",
        "--reason",
    )
    out = ok(
        cli(
            "visit",
            "record",
            pid,
            "baseline",
            "--date",
            "2026-01-25",
            *_values(eq_vas="70"),
            "--reason",
            "EQ VAS misread",
        )
    )
    assert out == "Recorded LEI-0001 baseline on 2026-01-25: completed\n"
    audit = ok(cli("audit", pid))
    assert "value_text: 65 -> 70" in audit and "reason: EQ VAS misread" in audit
    # week8 recorded outside its window is flagged
    out = ok(cli("visit", "record", pid, "week8", "--date", "2026-04-20", *_values()))
    assert out == "Recorded LEI-0001 week8 on 2026-04-20: out_of_window\n"
    due = ok(cli("visits", "due", "--today", "2026-04-21"))
    assert "1 due, 0 overdue, 1 out of window" in due
    assert [(r[1], r[4]) for r in table_rows(due)] == [("week8", "out_of_window"), ("month3", "due")]


def test_visit_record_invalid_values_names_both_and_stores_nothing(cli: Cli, tmp_path: Path) -> None:
    pid = enrol(cli)
    args = ("visit", "record", pid, "baseline", "--date", "2026-01-25")
    err = fails(
        cli(*args, *_values(iswt_distance_m="far", eq_vas="200")),
        "LEI-0001 baseline not recorded: nothing stored",
        "field iswt_distance_m: expected a whole number, got 'far'",
        "field eq_vas",
        "200",
    )
    assert len([line for line in err.splitlines() if line.startswith("  - ")]) == 2
    fails(cli(*args, *_values(), "--value", "grip_kg=30"), "field grip_kg", "not a measure of this visit")
    fails(cli("visit", "record", pid, "week8", "--date", "2026-01-25", *_values()), "not randomised yet")
    fails(cli(*args, "--value", "eq_vas"), "--value takes FIELD=VALUE")
    fails(cli(*args, *_values(), user="stats1"), "role statistician")
    schedule = ok(cli("visits", "schedule", pid, "--today", "2026-01-26"))
    assert table_rows(schedule)[0][:2] == ["LEI-0001", "baseline"]
    assert table_rows(schedule)[0][-1] == "-"
    ok(cli("export", "visits", str(tmp_path / "v.csv")))
    assert len(pd.read_csv(tmp_path / "v.csv")) == 0
    assert "create visit" not in ok(cli("audit", pid))


# --- export -----------------------------------------------------------------------------


@pytest.fixture
def exported_study(cli: Cli) -> Iterator[tuple[Cli, dict[str, str]]]:
    a = enrol(cli)
    b = enrol(cli, site="HAR", age_years=66, sex="male", cmv_serostatus="negative")
    c = enrol(cli, hospitalised="no")
    arms = {a: randomise(cli, a), b: randomise(cli, b)}
    ok(cli("visit", "record", a, "baseline", "--date", "2026-01-25", *_values(), user="physio1"))
    yield cli, {**arms, c: ""}


def test_export_participants_csv(exported_study: tuple[Cli, dict[str, str]], tmp_path: Path) -> None:
    cli, arms = exported_study
    path = tmp_path / "out.csv"
    assert ok(cli("export", "participants", str(path))) == f"Wrote 3 participants to {path}\n"
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    assert list(frame["participant_id"]) == ["HAR-0001", "LEI-0001", "LEI-0002"]
    assert list(frame.columns[:3]) == ["participant_id", "site", "consent_date"]
    assert {"name", "email"}.isdisjoint(frame.columns)
    by_id = frame.set_index("participant_id")
    assert by_id.loc["HAR-0001", "sex"] == "male" and by_id.loc["HAR-0001", "age_years"] == "66"
    assert by_id.loc["HAR-0001", "cmv_serostatus"] == "negative"
    assert by_id.loc["LEI-0002", "eligible"] == "False"
    assert by_id.loc["LEI-0002", "failed_criteria"] == "hospitalised"
    assert {pid: by_id.loc[pid, "arm"] for pid in arms} == arms
    assert by_id.loc["LEI-0001", "randomised_on"] == "2026-02-01"


def test_export_visits_parquet_is_tidy(exported_study: tuple[Cli, dict[str, str]], tmp_path: Path) -> None:
    cli, arms = exported_study
    path = tmp_path / "out.parquet"
    assert ok(cli("export", "visits", str(path))) == f"Wrote {len(BASELINE)} visit values to {path}\n"
    frame = pd.read_parquet(path)
    assert list(frame.columns[:4]) == ["participant_id", "visit_id", "visit_date", "measure_id"]
    assert {"value", "value_num", "type", "unit", "arm"} <= set(frame.columns)
    assert len(frame) == len(BASELINE)
    assert not frame.duplicated(["participant_id", "visit_id", "measure_id"]).any()
    assert set(frame["participant_id"]) == {"LEI-0001"} and set(frame["visit_id"]) == {"baseline"}
    assert {str(d)[:10] for d in frame["visit_date"]} == {"2026-01-25"}
    assert sorted(frame["measure_id"]) == sorted(BASELINE)
    values = frame.set_index("measure_id")
    assert values.loc["iswt_distance_m", "value"] == "350"
    assert values.loc["iswt_distance_m", "value_num"] == 350.0
    assert values.loc["iswt_distance_m", "unit"] == "m"
    assert values.loc["eq5d5l_index", "value_num"] == pytest.approx(0.71)
    assert values.loc["blood_drawn", "value"] == "true" and values.loc["blood_drawn", "value_num"] == 1.0
    assert values.loc["dsq_pem_present", "value"] == "false"
    assert values.loc["blood_sample_type", "value"] == "pbmc"
    assert set(frame["arm"]) == {arms["LEI-0001"]}


def test_export_refuses_overwrite_and_unknown_extension(
    exported_study: tuple[Cli, dict[str, str]], tmp_path: Path
) -> None:
    cli, _ = exported_study
    path = tmp_path / "out.csv"
    path.write_text("keep me\n", encoding="utf-8")
    fails(cli("export", "participants", str(path)), "exists", "--overwrite")
    assert path.read_text(encoding="utf-8") == "keep me\n"
    ok(cli("export", "participants", str(path), "--overwrite"))
    assert len(pd.read_csv(path)) == 3

    for name in ("out.xlsx", "out"):
        fails(cli("export", "visits", str(tmp_path / name)), "cannot tell the format", ".csv or .parquet")
        assert not (tmp_path / name).exists()
    ok(cli("export", "visits", str(tmp_path / "visits.txt"), "--format", "parquet"))
    assert len(pd.read_parquet(tmp_path / "visits.txt")) == len(BASELINE)
    fails(cli("export", "visits", str(tmp_path / "no_such_dir" / "v.csv")), "does not exist")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


# --- error handling, seed, help ---------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # CLI-only behaviour
def test_debug_raises_instead_of_exit_1(cli: Cli) -> None:
    argv = ["randomise", "XXX-9999", "--db", cli.url, "--user", "coord"]
    assert run(argv) == 1
    with pytest.raises(NotFoundError, match="XXX-9999"):
        run(["--debug", *argv])
    with pytest.raises(DataValidationError) as info:
        run(["--debug", *add_args(age_years="abc", sex="x"), "--db", cli.url, "--user", "coord"])
    assert {p.location for p in info.value.problems} == {
        "participant, field age_years",
        "participant, field sex",
    }


def test_reveal_seed_admin_only(cli: Cli) -> None:
    out = ok(cli("study", "show", "--reveal-seed", user="admin"))
    assert "Randomisation seed: 12345\n" in out
    for user, role in (("coord", "coordinator"), ("lab1", "lab"), ("stats1", "statistician")):
        result = cli("study", "show", "--reveal-seed", user=user)
        fails(result, f"role {role}", "see the randomisation seed", "allowed roles: admin")
        assert "12345" not in result.out + result.err
    assert "12345" not in ok(cli("study", "show", user="admin"))


def _commands() -> list[tuple[str, ...]]:
    def walk(cmd: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        subs = getattr(cmd, "commands", None)
        if path:
            yield path
        for name, sub in (subs or {}).items():
            yield from walk(sub, (*path, name))

    return list(walk(typer.main.get_command(app), ()))


COMMANDS = _commands()


def test_every_documented_command_is_registered() -> None:
    expected = {
        ("study", "create"), ("study", "show"), ("protocol", "check"), ("user", "add"), ("user", "list"),
        ("participant", "add"), ("participant", "import"), ("participant", "list"),
        ("participant", "update"), ("participant", "withdraw"), ("randomise",), ("audit",),
        ("visits", "due"), ("visits", "schedule"), ("visit", "record"), ("export", "participants"),
        ("export", "visits"), ("export", "redcap-dictionary"), ("demo",),
    }  # fmt: skip
    assert expected <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    description = (command.help or "").strip()
    assert description, f"`immunorehab {' '.join(path)}` has no description"
    out = ok(Cli("", capsys)(*path, "--help", db=False, user=None))
    flat = " ".join(out.split())
    assert f"Usage: immunorehab {' '.join(path)}" in flat
    assert " ".join(description.splitlines()[0].split()) in flat


def test_root_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(Cli("", capsys)("--help", db=False, user=None))
    for name in {p[0] for p in COMMANDS}:
        assert re.search(rf"^\s+{re.escape(name)}\b", out, re.M), name


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # CLI-only behaviour
def test_subprocess_error_is_one_line_without_traceback(study: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("IMMUNOREHAB_DEBUG", "IMMUNOREHAB_USER")}
    proc = subprocess.run(
        [sys.executable, "-m", "immunorehab", "randomise", "XXX-9999", "--db", study.url, "--user", "coord"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ") and "XXX-9999" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""
