"""The cytokine commands as a user runs them: fit on every fixture format, import, qc, profile, simulate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from factories import person
from immunorehab.cli.main import run
from immunorehab.simulate.plates import simulate_levels, simulate_plate, write_plate
from immunorehab.study.participants import add_participant
from immunorehab.study.service import add_user, create_study
from testpaths import PHOSP, ROLE_USERS

REPO = Path(__file__).resolve().parents[2]
PLATES = REPO / "tests" / "data" / "cytokines" / "plates"
ASSAY = str(REPO / "examples" / "assays" / "long_covid_panel.yaml")


@pytest.mark.parametrize(
    "readings", ["FIX-P01_long.csv", "FIX-P01_grid.csv", "FIX-P01_grid_xlsx.xlsx", "FIX-P01_xponent.csv"]
)
def test_fit_writes_concentrations_and_plots(
    readings: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = run(
        [
            "cytokines",
            "fit",
            str(PLATES / "FIX-P01_map.csv"),
            str(PLATES / readings),
            "--assay",
            ASSAY,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    conc = pd.read_csv(out / "concentrations.csv")
    assert list(conc.columns) == ["participant", "visit", "analyte", "concentration", "unit", "flag"]
    assert len(conc) == 30 * 8 and set(conc["unit"]) == {"pg/mL"}
    assert len(list(out.glob("curve_*.png"))) == 8
    assert (out / "curves.csv").exists() and (out / "standards.csv").exists()
    text = capsys.readouterr().out
    assert "standard curves" in text and "Results by flag" in text
    # no silent overwrite
    again = run(
        [
            "cytokines",
            "fit",
            str(PLATES / "FIX-P01_map.csv"),
            str(PLATES / readings),
            "--assay",
            ASSAY,
            "--out",
            str(out),
        ]
    )
    assert again == 1 and "--overwrite" in capsys.readouterr().err


def test_fit_reports_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "map.csv"
    bad.write_text("well,role\nA1,calibrator\n")
    code = run(
        [
            "cytokines",
            "fit",
            str(bad),
            str(PLATES / "FIX-P01_long.csv"),
            "--assay",
            ASSAY,
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("Error: ") and "row 2 (A01), field role" in err
    assert "Traceback" not in err


def test_simulate_plate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["simulate", "plate", "--out", str(tmp_path), "--samples", "5", "--format", "xponent"]) == 0
    assert (tmp_path / "SIM-P01_xponent.csv").exists() and (tmp_path / "SIM-P01_truth.csv").exists()
    assert run(["simulate", "plate", "--out", str(tmp_path), "--format", "pdf"]) == 1


def test_fit_a_gen5_elisa_export_recovers_the_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A one-analyte IL-6 ELISA exported from Gen5 as text: raw 450 nm read, 4PL, samples near the truth."""
    args = ["cytokines", "fit", str(PLATES / "FIX-G01_map.csv"), str(PLATES / "FIX-G01_gen5.txt")]
    args += ["--assay", str(REPO / "examples" / "assays" / "il6_elisa.yaml")]
    assert run([*args, "--out", str(tmp_path / "none")]) == 1
    assert "pass the analyte (--analyte)" in capsys.readouterr().err
    assert run([*args, "--analyte", "IL-6", "--out", str(tmp_path / "out")]) == 0
    conc = pd.read_csv(tmp_path / "out" / "concentrations.csv")
    truth = pd.read_csv(PLATES / "FIX-G01_truth.csv").dropna(subset=["participant"])
    merged = conc.merge(truth, on=["participant", "visit", "analyte"])
    assert len(merged) == len(truth) == 30 and set(merged["flag"]) == {"ok"}
    # samples are diluted 1:2 on the plate; the dilution is applied, so these are neat concentrations
    error = np.abs(np.log(merged["concentration"] / merged["true_concentration"]))
    assert float(error.median()) < 0.05 and float(error.max()) < 0.15
    curves = pd.read_csv(tmp_path / "out" / "curves.csv")
    assert curves.loc[0, "model"] == "4PL" and curves.loc[0, "status"] == "ok"
    assert (tmp_path / "out" / "curve_IL-6.png").exists()
    # Gen5's blank-subtracted read is a choice, not the default
    other = [*args, "--analyte", "IL-6", "--read", "Blank 450nm:450", "--out", str(tmp_path / "blanked")]
    assert run(other) == 0
    blanked = pd.read_csv(tmp_path / "blanked" / "standards.csv")
    raw = pd.read_csv(tmp_path / "out" / "standards.csv")
    assert blanked["signal"].sum() < raw["signal"].sum()


def test_simulate_a_gen5_plate(tmp_path: Path) -> None:
    assert run(["simulate", "plate", "--out", str(tmp_path), "--samples", "4", "--format", "gen5"]) == 0
    text = (tmp_path / "SIM-P01_gen5.txt").read_text()
    assert text.splitlines()[2] == "Software Version\t3.12.08" and "\nResults\n" in text
    assert set(pd.read_csv(tmp_path / "SIM-P01_truth.csv")["analyte"]) == {"IL-6"}


@pytest.fixture
def study_db(tmp_path: Path) -> tuple[str, list[str]]:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    store, _ = create_study(url, PHOSP, admin="admin", seed=1)
    for name, role in ROLE_USERS.items():
        add_user(store, by="admin", username=name, role=role)
    pids = [add_participant(store, by="coord", values=person()).participant_id for _ in range(6)]
    store.dispose()
    return url, pids


def test_import_qc_profile(
    study_db: tuple[str, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, pids = study_db
    rng = np.random.default_rng(11)
    for n in range(1, 4):
        visits = [(p, v) for p in pids for v in ("baseline", "month12", "month24")]
        plate = simulate_plate(
            simulate_levels(visits, rng=rng, elevated={pids[0]: 30.0}), rng=rng, plate_id=f"RUN-{n}"
        )
        map_path, readings_path = write_plate(plate, tmp_path / f"p{n}", "xponent")
        code = run(
            [
                "cytokines",
                "import",
                str(map_path),
                str(readings_path),
                "--assay",
                ASSAY,
                "--db",
                url,
                "--user",
                "lab1",
            ]
        )
        assert code == 0, capsys.readouterr().err
        assert f"Imported plate RUN-{n} (run {n})" in capsys.readouterr().out
    assert (
        run(["cytokines", "qc", "--db", url, "--user", "lab1", "--out", str(tmp_path / "qc"), "--normalise"])
        == 0
    )
    text = capsys.readouterr().out
    assert "Controls across plates" in text and "CTRL-H" in text
    lj = pd.read_csv(tmp_path / "qc" / "levey_jennings.csv")
    assert len(lj) == 3 * 2 * 8 and len(list((tmp_path / "qc").glob("lj_*.png"))) == 16
    assert (tmp_path / "qc" / "concentrations_bridged.csv").exists()
    assert (
        run(["cytokines", "profile", "--db", url, "--user", "assessor1", "--out", str(tmp_path / "prof")])
        == 0
    )
    text = capsys.readouterr().out
    assert "no published range" in text and "Persistently elevated from day 365" in text
    persist = pd.read_csv(tmp_path / "prof" / "persistence.csv").set_index("participant")
    assert bool(persist.loc[pids[0], "persistently_elevated"])
    assert persist["persistently_elevated"].sum() <= 2


def test_import_refuses_physio(study_db: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = study_db
    code = run(
        [
            "cytokines",
            "import",
            str(PLATES / "FIX-P01_map.csv"),
            str(PLATES / "FIX-P01_long.csv"),
            "--assay",
            ASSAY,
            "--db",
            url,
            "--user",
            "physio1",
        ]
    )
    assert code == 1 and "may not import cytokine plates" in capsys.readouterr().err


def test_import_unknown_participants_lists_them(
    study_db: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = study_db
    code = run(
        [
            "cytokines",
            "import",
            str(PLATES / "FIX-P01_map.csv"),
            str(PLATES / "FIX-P01_long.csv"),
            "--assay",
            ASSAY,
            "--db",
            url,
            "--user",
            "lab1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "SIM-0001 is not enrolled" in err and "nothing stored" in err
    assert run(["cytokines", "qc", "--db", url, "--user", "lab1"]) == 1
    assert "no control results stored yet" in capsys.readouterr().err


def test_demo_step_runs(tmp_path: Path) -> None:
    from immunorehab.study.demo import run_demo

    result = run_demo(tmp_path, n=24, seed=7, today=dt.date(2026, 11, 22))
    lines = dict(result.steps)["immunorehab.cytokines.demo:demo_cytokines"]
    assert lines[0].startswith("Cytokine plates:") and "Standard curves:" in lines[1]
    assert "Persistently elevated" in lines[3]
    assert (tmp_path / "cytokines" / "concentrations.csv").exists()
    assert list((tmp_path / "cytokines").glob("curve_*.png"))
