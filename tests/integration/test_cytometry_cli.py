"""``immunorehab cytometry ...`` and ``immunorehab simulate fcs`` driven as a lab user would."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from factories import person
from immunorehab.cli.main import run
from immunorehab.study.participants import add_participant


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IMMUNOREHAB_DEBUG", "IMMUNOREHAB_USER", "IMMUNOREHAB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def fcs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sim")
    for seed in (1, 2):
        args = ["simulate", "fcs", str(folder / f"tube{seed}.fcs"), "--events", "12000", "--seed", str(seed)]
        assert run([*args, "--beads", "--fraction", "cd8_naive=0.2", "--fraction", "cd8_temra=0.4"]) == 0
    return folder


def test_simulate_fcs_writes_file_truth_and_labels(fcs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "simulate", "fcs", str(fcs / "x.fcs"), "--events", "2000", "--seed", "9")
    assert code == 0
    assert "Wrote" in out and "2,000 events x 16 channels, seed 9" in out
    truth = pd.read_json(fcs / "tube1.truth.json", typ="series")
    gates = pd.DataFrame(truth["gates"]).set_index("gate")
    assert gates.loc["cd8_naive", "expected_pct_parent"] == pytest.approx(20.0)
    assert len(pd.read_csv(fcs / "tube1.labels.csv")) == 12_000
    code, _, err = cli(capsys, "simulate", "fcs", str(fcs / "y.fcs"), "--fraction", "cd8_naive=2")
    assert code == 1 and err.startswith(
        "Error: cannot simulate this sample: cd8_memory must be between 0 and 1"
    )
    assert "cd8_memory fractions must sum to 1, got 2.65" in err


def test_gate_writes_counts_plots_and_exports(
    fcs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gated"
    code, stdout, err = cli(
        capsys, "cytometry", "gate", str(fcs / "tube1.fcs"), str(fcs / "tube2.fcs"), "--out", str(out),
        "--beads-per-tube", "50000", "--volume-ul", "50",
        "--membership", "--h5ad", "--export-gate", "cd8_naive",
    )  # fmt: skip
    assert code == 0, err
    assert "Gated (% of parent)" in stdout and "tube1" in stdout and "Wrote" in stdout
    counts = pd.read_csv(out / "counts.csv")
    assert {"sample", "gate", "parent", "count", "pct_parent", "pct_total", "cells_per_ul"} <= set(
        counts.columns
    )
    assert sorted(counts["sample"].unique()) == ["tube1", "tube2"]
    naive = counts[(counts["sample"] == "tube1") & (counts["gate"] == "cd8_naive")].iloc[0]
    assert naive["pct_parent"] == pytest.approx(20.0, abs=3.0)  # simulated with 20% naive CD8
    for name in (
        "tube1.gates.png",
        "tube1.gating.xml",
        "tube1.membership.parquet",
        "tube1.h5ad",
        "tube1.cd8_naive.fcs",
    ):
        assert (out / name).is_file(), name
    assert {"rule", "status", "template_value", "placed_value"} <= set(
        pd.read_csv(out / "gate_moves.csv").columns
    )
    code, _, err = cli(capsys, "cytometry", "gate", str(fcs / "tube1.fcs"), "--out", str(out))
    assert code == 1 and err == f"Error: {out / 'counts.csv'} exists: pass --overwrite to replace it\n"


def test_an_edited_gatingml_without_auto_placement(fcs: Path, tmp_path: Path, capsys) -> None:
    cli(
        capsys,
        "cytometry",
        "gate",
        str(fcs / "tube1.fcs"),
        "--out",
        str(tmp_path / "a"),
        "--plot-format",
        "none",
    )
    placed = tmp_path / "a" / "tube1.gating.xml"
    text = placed.read_text()
    start = text.index('gating:id="t_cells"')
    # a lab moves the CD3 threshold of the per-sample strategy to 0.9: almost no T cells remain
    fixed = text[:start] + _set_min(text[start:], "0.9")
    (tmp_path / "fixed.xml").write_text(fixed)
    code, _, err = cli(
        capsys, "cytometry", "gate", str(fcs / "tube1.fcs"), "--out", str(tmp_path / "b"),
        "--template", str(tmp_path / "fixed.xml"), "--no-auto", "--plot-format", "none",
    )  # fmt: skip
    assert code == 0, err
    before = pd.read_csv(tmp_path / "a" / "counts.csv").set_index("gate")
    after = pd.read_csv(tmp_path / "b" / "counts.csv").set_index("gate")
    assert before.loc["t_cells", "pct_parent"] > 50 and after.loc["t_cells", "pct_parent"] < 1
    assert after.loc["lymphocytes", "count"] == before.loc["lymphocytes", "count"]  # other gates as placed
    assert pd.read_csv(tmp_path / "b" / "gate_moves.csv").empty


def _set_min(text: str, value: str) -> str:
    key = 'gating:min="'
    i = text.index(key) + len(key)
    j = text.index('"', i)
    return text[:i] + value + text[j:]


def test_bad_panel_names_marker_and_channels(fcs: Path, tmp_path: Path, capsys) -> None:
    panel = tmp_path / "panel.csv"
    panel.write_text("marker,channel\nCD3,BUV395-A\nCD4,BV650-A\n")
    code, _, err = cli(capsys, "cytometry", "gate", str(fcs / "tube1.fcs"), "--out", str(tmp_path / "o"),
                       "--panel", str(panel))  # fmt: skip
    assert code == 1
    assert "marker 'CD4' -> channel 'BV650-A'" in err and "BV605-A (CD4)" in err
    assert err.rstrip().endswith("Error: no file could be gated (1 failed)")


def test_template_copies_for_editing(tmp_path: Path, capsys) -> None:
    code, out, _ = cli(capsys, "cytometry", "template", "--out", str(tmp_path))
    assert code == 0
    assert (tmp_path / "tcell-memory.xml").read_text().count("gating:RectangleGate gating:id=") == 21
    assert (tmp_path / "tcell-memory.panel.csv").read_text().startswith("marker,channel\n")
    code, _, err = cli(capsys, "cytometry", "template", "--out", str(tmp_path))
    assert code == 1 and "exists" in err


def test_batch_into_the_store_and_results(study, fcs: Path, tmp_path: Path, capsys) -> None:
    ids = [add_participant(study.store, by="coord", values=person()).participant_id for _ in range(2)]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "file,participant_id,visit_id,draw_time,beads_per_tube,volume_ul\n"
        f"{fcs / 'tube1.fcs'},{ids[0]},baseline,2026-02-01T09:00,50000,50\n"
        f"{fcs / 'tube2.fcs'},{ids[1]},baseline,2026-02-01T09:30,50000,50\n"
    )
    args = ["cytometry", "batch", str(manifest), "--out", str(tmp_path / "out"), "--workers", "1"]
    code, out, err = cli(capsys, *args, "--db", study.url, "--user", "lab1")
    assert code == 0, err
    assert "Batch: 2 gated, 0 skipped (already processed), 0 failed, 2 stored" in out
    code, out, _ = cli(capsys, *args, "--db", study.url, "--user", "lab1")
    assert "0 gated, 2 skipped" in out
    code, out, _ = cli(capsys, "cytometry", "results", "--db", study.url, "--user", "assessor1")
    assert code == 0 and ids[0] in out and "cd8_naive %" in out
    export = tmp_path / "results.csv"
    cli(capsys, "cytometry", "results", "--out", str(export), "--db", study.url, "--user", "lab1")
    assert len(pd.read_csv(export)) == 2 * 23
    code, _, err = cli(capsys, *args, "--db", study.url, "--user", "physio1")
    assert code == 1 and "may not store cytometry results" in err


def test_a_row_with_a_missing_file_fails_alone(study, fcs: Path, tmp_path: Path, capsys) -> None:
    ids = [add_participant(study.store, by="coord", values=person()).participant_id for _ in range(2)]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "file,participant_id,visit_id\n"
        f"{fcs / 'not-scanned-yet.fcs'},{ids[0]},baseline\n"
        f"{fcs / 'tube2.fcs'},{ids[1]},baseline\n"
    )
    args = ["cytometry", "batch", str(manifest), "--out", str(tmp_path / "out"), "--workers", "1"]
    code, out, err = cli(capsys, *args, "--db", study.url, "--user", "lab1")
    assert code == 1
    assert "Batch: 1 gated, 0 skipped (already processed), 1 failed, 1 stored" in out
    assert (
        f"Failed row 2 {fcs / 'not-scanned-yet.fcs'}: " in err and "does not exist (or is not a file)" in err
    )
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert failures["participant_id"].tolist() == [ids[0]]


def test_the_shipped_example_manifest_runs(tmp_path: Path, capsys) -> None:
    """examples/cytometry: the README's commands give a batch with both absolute-count methods."""
    import shutil

    example = Path(__file__).resolve().parents[2] / "examples" / "cytometry"
    folder = tmp_path / "example"
    shutil.copytree(example, folder)
    (folder / "fcs").mkdir()
    for name, seed, beads in (("LEI-0001_baseline", 1, True), ("LEI-0001_week8", 2, True),
                              ("LEI-0002_baseline", 3, False), ("LEI-0002_week8", 4, False)):  # fmt: skip
        args = [
            "simulate",
            "fcs",
            str(folder / "fcs" / f"{name}.fcs"),
            "--events",
            "12000",
            "--seed",
            str(seed),
        ]
        assert run(args + (["--beads"] if beads else [])) == 0
    batch = [
        "cytometry",
        "batch",
        str(folder / "manifest.csv"),
        "--out",
        str(tmp_path / "o"),
        "--workers",
        "1",
    ]
    code, out, err = cli(capsys, *batch)
    assert code == 0, err
    assert "4 gated" in out
    counts = pd.read_csv(tmp_path / "o" / "counts.csv")
    t_cells = counts[counts["gate"] == "t_cells"].set_index("participant_id")["cells_per_ul"]
    assert (t_cells > 300).all() and (t_cells < 2_500).all()
    flags = pd.read_csv(tmp_path / "o" / "qc_flags.csv")
    exercise = flags[flags["code"] == "draw_after_exercise"]
    assert exercise[["participant_id", "visit_id"]].values.tolist() == [["LEI-0002", "week8"]]
    from immunorehab.cytometry.template import load_template, strategy_channels

    cytoflex = strategy_channels(load_template("tcell-memory", panel=example / "panel_cytoflex.csv"))
    assert {"PB450-A", "KO525-A", "TIME", "FSC-A"} <= set(cytoflex) and "BUV395-A" not in cytoflex
