"""The BioTek/Agilent Gen5 text export: the layout of real Gen5 3.x exports (Software Version header,
Layout and Results sections, each row's reads labelled after its last well), read into the raw signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunorehab.cytokines.io_plate import read_readings
from immunorehab.errors import PlateError
from immunorehab.simulate.plates import (
    DEFAULT_PANEL,
    ELISA_IL6,
    simulate_levels,
    simulate_plate,
    write_plate,
)

PLATES = Path(__file__).resolve().parents[2] / "data" / "cytokines" / "plates"
GEN5 = PLATES / "FIX-G01_gen5.txt"


def results_rows(text: str) -> dict[str, list[list[str]]]:
    """The fixture's Results section, as the lines of each plate row (letter line + continuations)."""
    lines = text.splitlines()
    start = lines.index("Results") + 2
    rows: dict[str, list[list[str]]] = {}
    for line in lines[start:]:
        if not line.strip():
            break
        cells = line.split("\t")
        if cells[0]:
            rows[cells[0]] = []
        rows[list(rows)[-1]].append(cells)
    return rows


def test_auto_detected_and_the_raw_read_is_the_signal() -> None:
    reads = read_readings(GEN5, analyte="IL-6")
    assert reads.format == "gen5"
    assert reads.analytes == ["IL-6"]
    assert reads.metadata["Software Version"] == "3.12.08"
    assert reads.metadata["Reader Serial Number"] == "SIM0000"
    assert reads.metadata["Gen5 read"] == "450nm:450"
    assert reads.metadata["Gen5 reads"] == "450nm:450, Blank 450nm:450, [Concentration]"
    # every filled well, with the number printed on its row's 450nm:450 line (not the blanked one)
    rows = results_rows(GEN5.read_text())
    expected = {
        f"{letter}{c:02d}": float(line[0][c])
        for letter, line in rows.items()
        for c in range(1, 13)
        if line[0][c] not in ("", "OVRFLW")
    }
    got = reads.frame.set_index("well")["signal"]
    assert len(reads.frame) == 82 and len(expected) == 82
    assert {w: got[w] for w in expected} == expected
    assert reads.frame["bead_count"].isna().all()


def test_writer_and_reader_round_trip_the_simulated_plate() -> None:
    """The fixture is `immunorehab simulate plate --format gen5 --seed 7 --plate-id FIX-G01`."""
    rng = np.random.default_rng(7)
    people = [(f"SIM-{i + 1:04d}", "baseline") for i in range(30)]
    plate = simulate_plate(
        simulate_levels(people, (ELISA_IL6,), rng=rng), rng=rng, plate_id="FIX-G01", panel=(ELISA_IL6,)
    )
    reads = read_readings(GEN5, analyte="IL-6").frame
    merged = plate.readings.merge(reads, on=["well", "analyte"], suffixes=("", "_read"))
    assert len(merged) == len(plate.readings) == 82
    np.testing.assert_array_equal(merged["signal_read"], merged["signal"])
    assert (merged["saturated_read"] == merged["saturated"]).all()


def test_another_read_by_name() -> None:
    raw = read_readings(GEN5, analyte="IL-6").frame.set_index("well")["signal"]
    blanked = read_readings(GEN5, analyte="IL-6", read="Blank 450nm:450").frame.set_index("well")["signal"]
    plate_map = pd.read_csv(PLATES / "FIX-G01_map.csv").set_index("well")
    blank = raw[plate_map.index[plate_map["role"] == "blank"]].mean()
    np.testing.assert_allclose(blanked, raw - blank, atol=0.0015)  # Gen5 prints 3 decimals


def test_the_analyte_must_be_named() -> None:
    with pytest.raises(PlateError) as info:
        read_readings(GEN5)
    assert "does not name the analyte: pass the analyte (--analyte)" in str(info.value)


def test_an_unknown_read_lists_the_reads() -> None:
    with pytest.raises(PlateError) as info:
        read_readings(GEN5, analyte="IL-6", read="570nm:570")
    assert [p.message for p in info.value.problems] == [
        "no read '570nm:570' in this export (reads: 450nm:450, Blank 450nm:450, [Concentration])"
    ]


def test_ovrflw_is_saturated_and_question_marks_are_missing(tmp_path: Path) -> None:
    text = GEN5.read_text()
    lines = text.splitlines()
    a = lines.index("Results") + 2  # row A's raw line
    cells = lines[a].split("\t")
    assert cells[0] == "A" and cells[-1] == "450nm:450"
    cells[1], cells[2] = "OVRFLW", "?????"
    lines[a] = "\t".join(cells)
    path = tmp_path / "edited.txt"
    path.write_text("\n".join(lines) + "\n")
    frame = read_readings(path, analyte="IL-6").frame.set_index("well")
    assert bool(frame.loc["A01", "saturated"]) and np.isnan(frame.loc["A01", "signal"])
    assert not bool(frame.loc["A02", "saturated"]) and np.isnan(frame.loc["A02", "signal"])
    assert int(frame["saturated"].sum()) == 1


def test_bad_cells_and_missing_rows_are_named(tmp_path: Path) -> None:
    lines = GEN5.read_text().splitlines()
    a = lines.index("Results") + 2
    cells = lines[a + 3].split("\t")  # row B's raw line
    assert cells[0] == "B"
    cells[4] = "0.1x"
    lines[a + 3] = "\t".join(cells)
    path = tmp_path / "bad.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PlateError) as info:
        read_readings(path, analyte="IL-6")
    assert [p.location for p in info.value.problems] == [f"{path} line {a + 4} well B04 (450nm:450)"]
    assert "nothing imported" in str(info.value)
    # row D dropped entirely
    lines = GEN5.read_text().splitlines()
    d = a + 9
    assert lines[d].startswith("D\t")
    del lines[d : d + 3]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PlateError, match=r"expected rows A\.\.H in order, found A, B, C, E, F, G, H"):
        read_readings(path, analyte="IL-6")


def test_a_multi_plate_export_is_refused(tmp_path: Path) -> None:
    text = GEN5.read_text()
    second = text[text.index("Plate Number") :].replace("Plate 1", "Plate 2")
    path = tmp_path / "two.txt"
    path.write_text(text + "\n" + second)
    with pytest.raises(PlateError) as info:
        read_readings(path, analyte="IL-6")
    assert "a multi-plate Gen5 export (Plate 1, Plate 2): export one plate per file" in str(info.value)


def test_read_is_only_for_gen5_exports() -> None:
    with pytest.raises(PlateError, match="read= picks a read of a Gen5 export; this file is in xponent"):
        read_readings(PLATES / "FIX-P01_xponent.csv", read="450nm:450")


def test_the_writer_refuses_a_multiplex_plate(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    plate = simulate_plate(simulate_levels([("SIM-0001", "baseline")], rng=rng), rng=rng)
    assert len(plate.panel) == len(DEFAULT_PANEL) > 1
    with pytest.raises(ValueError, match="one analyte per plate"):
        write_plate(plate, tmp_path, "gen5")


def two_filter_export(path: Path) -> dict[str, np.ndarray]:
    """A fluorescence endpoint read with two filter sets, in Gen5's layout: two labelled lines per row."""
    labels = ("FluorRead:360/40,460/40", "FluorRead:485/20,528/20")
    values = {
        label: np.arange(96, dtype=float).reshape(8, 12) * (k + 1) + 1000 for k, label in enumerate(labels)
    }
    lines = ["", "", "Software Version\t3.12.08", "", "Plate Number\tPlate 1", "Reader Type:\tSynergy H1"]
    lines += ["", "Procedure Details", "", "Read\tFluorRead", "\tFluorescence Endpoint", "", "Results"]
    lines.append("\t" + "\t".join(str(c) for c in range(1, 13)))
    for r in range(8):
        for k, label in enumerate(labels):
            cells = [f"{v:.0f}" for v in values[label][r]]
            lines.append("\t".join([chr(65 + r) if k == 0 else "", *cells, label]))
    path.write_text("\n".join(lines) + "\n\n")
    return values


def test_two_filter_sets_first_by_default_second_by_name(tmp_path: Path) -> None:
    path = tmp_path / "fluor.txt"
    values = two_filter_export(path)
    first = read_readings(path, analyte="IL-6")
    assert first.format == "gen5"
    assert first.metadata["Gen5 reads"] == "FluorRead:360/40,460/40, FluorRead:485/20,528/20"
    grid = first.frame.set_index("well")["signal"]
    assert grid["A01"] == 1000 and grid["H12"] == 1095 and len(grid) == 96
    second = read_readings(path, analyte="IL-6", read="FluorRead:485/20,528/20").frame.set_index("well")
    expected = values["FluorRead:485/20,528/20"]
    assert second.loc["B03", "signal"] == expected[1, 2] == 1000 + 2 * 14
