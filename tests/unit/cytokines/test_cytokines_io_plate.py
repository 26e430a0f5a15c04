"""Plate maps and the three reading formats (fixtures built from each vendor's layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunorehab.cytokines.io_plate import read_plate_map, read_readings
from immunorehab.cytokines.plate import normalise_well, plate_shape
from immunorehab.errors import PlateError

PLATES = Path(__file__).resolve().parents[2] / "data" / "cytokines" / "plates"

FORMATS = {
    "long": "FIX-P01_long.csv",
    "grid": "FIX-P01_grid.csv",
    "grid-xlsx": "FIX-P01_grid_xlsx.xlsx",
    "xponent": "FIX-P01_xponent.csv",
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_reads_the_same_signals(name: str) -> None:
    reads = read_readings(PLATES / FORMATS[name])
    long = pd.read_csv(PLATES / "FIX-P01_long.csv")
    merged = long.merge(reads.frame, on=["well", "analyte"], suffixes=("", "_read"))
    assert len(merged) == len(long) == 82 * 8
    assert np.allclose(merged["signal"], merged["signal_read"], rtol=1e-4)
    assert reads.format == ("grid" if name.startswith("grid") else name)
    assert len(reads.sha256) == 64
    if name in ("long", "xponent"):
        assert np.array_equal(merged["bead_count"], merged["bead_count_read"])


def test_xponent_header_metadata() -> None:
    reads = read_readings(PLATES / FORMATS["xponent"])
    assert reads.metadata["Batch"] == "FIX-P01"
    assert reads.metadata["Program"] == "xPONENT"
    assert reads.metadata["Build"] == "4.3.229.0"


def test_plate_map_fixture() -> None:
    pmap = read_plate_map(PLATES / "FIX-P01_map.csv")
    roles = pmap.wells["role"].value_counts().to_dict()
    assert roles == {"standard": 16, "blank": 2, "control": 4, "sample": 60}
    assert pmap.shape == (8, 12)
    il6 = pmap.standard_concentration("IL-6")
    assert il6.max() == 10000 and pmap.standard_concentration("IP-10").max() == 20000
    samples = pmap.wells[pmap.wells["role"] == "sample"]
    assert (samples["dilution"] == 2.0).all() and samples["participant"].str.startswith("SIM-").all()


def test_grid_overflow_and_unnamed_grid(tmp_path: Path) -> None:
    rows = ["Time [s],0", "<>,1,2,3,4,5,6,7,8,9,10,11,12"]
    rows += [
        chr(65 + r) + "," + ",".join("Overflow" if (r, c) == (0, 0) else str(0.1 + r + c) for c in range(12))
        for r in range(8)
    ]
    path = tmp_path / "elisa.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(PlateError, match="pass the analyte"):
        read_readings(path)
    reads = read_readings(path, analyte="IL-6")
    a1 = reads.frame.set_index("well").loc["A01"]
    assert bool(a1["saturated"]) and np.isnan(a1["signal"])
    assert reads.frame.set_index("well").loc["H12", "signal"] == pytest.approx(7.1 + 11)
    assert reads.metadata["Time [s]"] == "0"


def test_biotek_style_tab_grid_with_ovrflw(tmp_path: Path) -> None:
    lines = ["IFN-g", "\t" + "\t".join(str(i) for i in range(1, 13))]
    lines += [
        chr(65 + r) + "\t" + "\t".join("OVRFLW" if r == c == 1 else "1.5" for c in range(12))
        for r in range(8)
    ]
    path = tmp_path / "gen5.txt"
    path.write_text("\n".join(lines) + "\n")
    reads = read_readings(path, format="grid")
    assert reads.analytes == ["IFN-g"] and int(reads.frame["saturated"].sum()) == 1


def test_bad_cells_are_listed_by_well(tmp_path: Path) -> None:
    rows = ["IL-6", "<>,1,2,3,4,5,6,7,8,9,10,11,12"]
    rows += [
        chr(65 + r) + "," + ",".join("abc" if (r, c) == (2, 4) else "1" for c in range(12)) for r in range(8)
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(PlateError) as info:
        read_readings(path)
    assert [p.location for p in info.value.problems] == [f"{path} well C05 (IL-6)"]
    assert "nothing imported" in str(info.value)


def test_long_format_problems(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("well,analyte,mfi,count\nA1,IL-6,100,50\nZ9,IL-6,1,1\nB1,,2,3\nC1,IL-6,x,4\n")
    with pytest.raises(PlateError) as info:
        read_readings(path)
    locations = [p.location for p in info.value.problems]
    assert locations == [
        f"{path} row 3, field well",
        f"{path} row 4, field analyte",
        f"{path} row 5, field signal",
    ]
    path.write_text("well,analyte,foo\nA1,IL-6,1\n")
    with pytest.raises(PlateError, match="no signal column"):
        read_readings(path)


def test_xponent_without_median_block(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        'Program,xPONENT\n"DataType:","Count"\nLocation,Sample,IL-6,Total Events\n"1(1,A1)",S1,50,50\n'
    )
    with pytest.raises(PlateError, match="no 'DataType:,Median' block"):
        read_readings(path)


def test_plate_map_problems_all_listed(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(
        "well,role,concentration,participant,visit,dilution\n"
        "A1,standard,,,,\n"  # no concentration
        "A1,blank,,,,\n"  # duplicate well
        "B1,sample,,LEI-0001,,\n"  # no visit
        "C1,calibrator,,,,\n"  # unknown role
        "D1,sample,,LEI-0002,baseline,0\n"  # dilution 0
        "Q30,blank,,,,\n"  # bad well
        "E1,control,,,,\n"  # control without name
    )
    with pytest.raises(PlateError) as info:
        read_plate_map(path)
    text = str(info.value)
    for needle in (
        "needs a concentration",
        "listed twice",
        "needs both participant and visit",
        "expected one of standard",
        "must be > 0",
        "expected a well",
        "needs a control name",
    ):
        assert needle in text
    assert len(info.value.problems) == 7


def test_plate_map_without_columns(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("position,kind\nA1,blank\n")
    with pytest.raises(PlateError, match="columns found: position, kind"):
        read_plate_map(path)


def test_well_names() -> None:
    assert normalise_well("a1") == "A01" and normalise_well(" P24 ") == "P24"
    with pytest.raises(ValueError):
        normalise_well("A25")
    assert plate_shape(["A01", "H12"]) == (8, 12) and plate_shape(["I01"]) == (16, 24)


def test_384_well_grid(tmp_path: Path) -> None:
    rows = ["MCP-1", "<>," + ",".join(str(i) for i in range(1, 25))]
    rows += [chr(65 + r) + "," + ",".join(f"{r * 24 + c}" for c in range(24)) for r in range(16)]
    path = tmp_path / "p384.csv"
    path.write_text("\n".join(rows) + "\n")
    reads = read_readings(path)
    assert len(reads.frame) == 384
    assert reads.frame.set_index("well").loc["P24", "signal"] == 383.0
    assert plate_shape(list(reads.frame["well"])) == (16, 24)
