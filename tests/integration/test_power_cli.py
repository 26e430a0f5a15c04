"""``immunorehab power``: analytic sample size (R's power.t.test digits) and power simulated from data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from immunorehab.cli.main import run


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_t_test_prints_r_power_t_test(capsys: pytest.CaptureFixture[str]) -> None:
    # R: power.t.test(n = 20, delta = 1) -> power = 0.8689528;
    #    power.t.test(power = .90, delta = 1) -> n = 22.02110 (R's ?power.t.test examples)
    code, out, _ = cli(capsys, "power", "t-test", "--n", "20", "--delta", "1")
    assert code == 0 and "0.8689528" in out and "power (solved)" in out
    code, out, _ = cli(capsys, "power", "t-test", "--delta", "1", "--power", "0.9")
    assert code == 0 and "22.0211" in out and "recruit 23 per arm" in out
    code, _, err = cli(capsys, "power", "t-test", "--delta", "1")
    assert (
        code == 1
        and "give exactly two of --n, --delta and --power" in err
        and "left out: --n, --power" in err
    )


def test_ancova_uses_the_residual_sd_and_one_df_more(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "power", "ancova", "--n", "20", "--delta", "1", "--sd", "1", "--rho", "0.6")
    assert code == 0 and "sd_residual" in out
    # independent formula: noncentral t with sd * sqrt(1 - rho^2) and 2n - 3 df
    df, ncp = 37, 1 / (0.8 * math.sqrt(2 / 20))
    q = stats.t.isf(0.025, df)
    expected = stats.nct.sf(q, df, ncp) + stats.nct.cdf(-q, df, ncp)
    assert f"{expected:.7g}" in out
    code, _, err = cli(capsys, "power", "ancova", "--n", "20", "--delta", "1", "--rho", "1")
    assert code == 1 and "rho must be strictly between -1 and 1" in err


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A trial in the layout of analyse's datasets/<outcome>.csv, simulated from a known ANCOVA model."""
    rng = np.random.default_rng(3)
    n = 40
    arm = np.repeat(["usual_care", "face_to_face"], n)
    base = rng.normal(300, 80, 2 * n)
    follow = 20 + 0.9 * base + 50 * (arm == "face_to_face") + rng.normal(0, 60, 2 * n)
    frame = pd.DataFrame({"participant_id": [f"LEI-{i:04d}" for i in range(2 * n)], "arm": arm})
    frame = frame.assign(baseline_value=base, followup_value=follow)
    path = tmp_path / "iswt_week8.csv"
    frame.to_csv(path, index=False)
    return path


def test_simulated_power_agrees_with_the_analytic_ancova(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "plan"
    args = ["power", "simulate", str(dataset), "--reference", "usual_care", "--n", "15", "--n", "30"]
    code, out, err = cli(capsys, *args, "--n-sim", "2000", "--seed", "5", "--out", str(out_dir))
    assert code == 0, err
    assert "Fitted on 80 participants of iswt_week8.csv: face_to_face vs usual_care difference" in out
    plan = pd.read_csv(out_dir / "power.csv")
    assert plan["n_per_arm"].tolist() == [15, 30] and set(plan["n_sim"]) == {2000}
    assert (out_dir / "power.png").stat().st_size > 10_000
    for row in plan.itertuples():
        df = 2 * row.n_per_arm - 3
        ncp = row.effect / (row.residual_sd * math.sqrt(2 / row.n_per_arm))
        q = stats.t.isf(0.025, df)
        analytic = stats.nct.sf(q, df, ncp) + stats.nct.cdf(-q, df, ncp)
        mc_se = math.sqrt(analytic * (1 - analytic) / 2000)
        assert abs(row.power - analytic) < 4 * mc_se, (row.n_per_arm, row.power, analytic)
        assert abs(row.coverage - 0.95) < 0.025
    # a smaller assumed effect needs more participants; the same seed gives the same plan
    code, out, _ = cli(capsys, *args, "--n-sim", "2000", "--seed", "5", "--effect", "25")
    assert code == 0 and "difference 25 (assumed)" in out
    code, _, err = cli(capsys, *args, "--n-sim", "2000", "--seed", "5", "--out", str(out_dir))
    assert code == 1 and "--overwrite" in err


def test_log_scale_ratio(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the fixture has one follow-up value below zero: a log analysis names it
    args = ["power", "simulate", "--reference", "usual_care", "--n", "20", "--log", "--n-sim", "200"]
    code, _, err = cli(capsys, *args, str(dataset), "--effect", "1.1")
    assert code == 1 and "log=True needs 'followup_value' > 0" in err and "1 such row(s)" in err
    frame = pd.read_csv(dataset)
    positive = tmp_path / "cd8_naive.csv"
    frame.assign(followup_value=frame["followup_value"].clip(lower=5.0)).to_csv(positive, index=False)
    code, out, _ = cli(capsys, *args, str(positive), "--effect", "1.1")
    assert code == 0 and "ratio 1.1 (assumed)" in out and "mean ratio" in out
    code, _, err = cli(capsys, *args, str(positive), "--effect", "0")
    assert code == 1 and "--effect with --log is a ratio and must be > 0" in err


def test_bad_datasets_and_arms_are_named(dataset: Path, tmp_path: Path, capsys) -> None:
    base = ["power", "simulate", "--n", "20"]
    code, _, err = cli(capsys, *base, str(dataset), "--reference", "control")
    assert code == 1 and "no arm 'control' in column 'arm' (arms: face_to_face, usual_care)" in err
    code, _, err = cli(capsys, *base, str(tmp_path / "nope.csv"), "--reference", "usual_care")
    assert code == 1 and "nope.csv does not exist" in err
    frame = pd.read_csv(dataset)
    three = tmp_path / "three.csv"
    frame.assign(arm=np.resize(["a", "b", "usual_care"], len(frame))).to_csv(three, index=False)
    code, _, err = cli(capsys, *base, str(three), "--reference", "usual_care")
    assert code == 1 and "arms a, b besides the reference: pass --arm" in err
    assert cli(capsys, *base, str(three), "--reference", "usual_care", "--arm", "b", "--n-sim", "50")[0] == 0
    renamed = tmp_path / "renamed.csv"
    frame.rename(columns={"followup_value": "week8"}).to_csv(renamed, index=False)
    code, _, err = cli(capsys, *base, str(renamed), "--reference", "usual_care")
    assert code == 1 and f"{renamed}: column(s) followup_value missing" in err
