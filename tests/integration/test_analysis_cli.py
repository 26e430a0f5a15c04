"""``immunorehab analyse`` as a user runs it, and the blinded analysis' independence from allocation."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from study_analysis_helpers import TODAY, build_trial, write_protocol

from immunorehab.analysis.study import RESULT_COLUMNS, run_study_analysis
from immunorehab.cli.main import run
from immunorehab.study.service import add_user, create_study
from testpaths import ROLE_USERS, TWO_ARM


def _clinical_only(data: dict[str, Any]) -> None:
    """The two-arm plan reduced to its visit-measure outcomes (no cytometry, no rehab)."""
    plan = data["analysis"]
    plan["outcomes"] = [o for o in plan["outcomes"] if o["source"]["type"] == "visit"]
    for o in plan["outcomes"]:
        o["population"] = "itt"
    plan["outcomes"][0]["role"] = "primary"
    plan["families"] = [f for f in plan["families"] if f["id"] == "function"]
    plan["imputation"].update(m=5, iterations=5)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def analysed(make_study: Callable[..., Any], tmp_path: Path) -> str:
    handle = make_study(write_protocol(TWO_ARM, tmp_path, _clinical_only))
    build_trial(handle.store, n=24)
    return handle.url


def _cli(capsys: pytest.CaptureFixture[str], url: str, *args: str, user: str = "stats1") -> Result:
    capsys.readouterr()
    code = run(["analyse", *args, "--db", url, "--user", user, "--today", TODAY.isoformat()])
    got = capsys.readouterr()
    return Result(code, got.out, got.err)


def test_analyse_writes_every_file_and_prints_the_primary_results(
    analysed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    result = _cli(capsys, analysed, "--out", str(out))
    assert result.code == 0, result.err
    assert "Primary outcome(s)" in result.out and "ISWT distance at 8 weeks" in result.out
    assert "face_to_face vs usual_care" in result.out
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    record = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    assert record["methods"]["design"] == "trial" and not record["provenance"]["blinded"]
    files = record["provenance"]["files"]
    assert files["results.csv"]["rows"] == len(results)
    assert set(files) >= {"results.csv", "descriptives.csv", "datasets/iswt_week8.csv"}
    assert not list(out.glob(".*.tmp"))  # temporary files were renamed into place


def test_existing_files_are_not_overwritten_without_the_flag(
    analysed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _cli(capsys, analysed, "--out", str(out)).code == 0
    before = (out / "results.csv").read_bytes()
    refused = _cli(capsys, analysed, "--out", str(out), "--blinded")
    assert refused.code == 1 and refused.err.startswith("Error: ") and "pass --overwrite" in refused.err
    assert (out / "results.csv").read_bytes() == before
    replaced = _cli(capsys, analysed, "--out", str(out), "--blinded", "--overwrite")
    assert replaced.code == 0 and "Blinded pooled analysis" in replaced.out
    assert pd.read_csv(out / "results.csv").empty


@pytest.mark.parametrize("user", ["coord", "physio1", "lab1", "assessor1"])
def test_other_roles_get_the_blinded_files(
    analysed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], user: str
) -> None:
    out = tmp_path / user
    result = _cli(capsys, analysed, "--out", str(out), user=user)
    assert result.code == 0, result.err
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.csv")))
    assert "face_to_face" not in text and "usual_care" not in text
    assert "face_to_face vs" not in result.out


def test_unknown_user_is_a_clear_error(
    analysed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _cli(capsys, analysed, "--out", str(tmp_path / "x"), user="nobody")
    assert result.code == 1 and result.err.startswith("Error: unknown or inactive user 'nobody'")
    assert "Traceback" not in result.err


def test_no_analysis_section_is_a_clear_error(
    make_study: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handle = make_study(write_protocol(TWO_ARM, tmp_path, lambda d: d.pop("analysis")))
    result = _cli(capsys, handle.url, "--out", str(tmp_path / "x"))
    assert result.code == 1
    assert "has no analysis section" in result.err and "analysis:" in result.err
    assert not (tmp_path / "x").exists()


def test_outcome_without_data_is_a_clear_error_unless_skipped(
    make_study: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handle = make_study(TWO_ARM)
    build_trial(handle.store, n=12)
    result = _cli(capsys, handle.url, "--out", str(tmp_path / "x"))
    assert result.code == 1
    assert "outcome 'cd4_naive' (cytometry gate cd4_naive (% of parent)) has no data at week8" in result.err
    assert "--skip-unavailable" in result.err
    skipped = _cli(
        capsys, handle.url, "--out", str(tmp_path / "y"), "--skip-unavailable", "--population", "itt"
    )
    assert skipped.code == 0, skipped.err
    assert "Skipped cd4_naive" in skipped.err
    record = json.loads((tmp_path / "y" / "analysis.json").read_text(encoding="utf-8"))
    assert {s["outcome"] for s in record["methods"]["skipped"]} >= {"cd4_naive", "cd8_naive", "attendance"}


# -- the blinded analysis does not depend on who was allocated where --------------------------------


def test_blinded_output_is_identical_whatever_the_allocation(tmp_path: Path) -> None:
    """Same participants and values, different randomisation seeds (so different arms): same blinded files."""
    protocol = write_protocol(TWO_ARM, tmp_path, _clinical_only)
    texts, arms = [], []
    for seed in (1, 2):
        store, _ = create_study(f"sqlite:///{tmp_path / f's{seed}.db'}", protocol, admin="admin", seed=seed)
        for name, role in ROLE_USERS.items():
            add_user(store, by="admin", username=name, role=role)
        trial = build_trial(store, n=20, visit_values=_fixed_values)
        arms.append(trial.arms)
        blind = run_study_analysis(store, by="lab1", today=TODAY)
        texts.append(
            [
                blind.results.to_csv(),
                blind.descriptives.to_csv(),
                *[f.to_csv() for f in blind.datasets.values()],
                json.dumps(blind.methods, sort_keys=True),
            ]
        )
        store.dispose()
    assert arms[0] != arms[1]  # the allocations differ ...
    assert texts[0] == texts[1]  # ... and nothing in the blinded analysis shows it


def _fixed_values(visit: str, rng: Any, effect: float, rehab: bool) -> dict[str, Any]:
    """Visit values that ignore the arm effect, so both studies hold identical data."""
    del effect, rehab
    return {
        "iswt_distance_m": int(300 + rng.normal(0, 70)),
        "facit_fatigue": int(min(52, max(0, 28 + rng.normal(0, 6)))),
        "blood_drawn": True,
    }
