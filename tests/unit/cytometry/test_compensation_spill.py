"""Spillover matrices and compensation against flowutils and the compensation oracles of the external data.

Oracles: flowutils' ``compensate`` (the same algebra FlowKit uses), ``event_data_for_poly_test.npy`` (data1
compensated with the Gating-ML matrix MySpill, README section 1), the round trip compensate -> spill back, and
the CSV matrices of section 3 including the missing-row negative test.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from flowutils import compensate as fu_compensate

from immunorehab.cytometry import GatingStrategy, Sample, Spillover, compensate, read_fcs
from immunorehab.errors import CompensationError, CytometryError

REPO = Path(__file__).resolve().parents[3]
EXT = REPO.parent / "shared" / "data" / "external"
if not EXT.is_dir():  # pragma: no cover
    pytest.skip(f"external oracle folder {EXT} is missing", allow_module_level=True)

COMP_CSV = EXT / "flowkit/data/comp_complete_example.csv"
FU_DATA = EXT / "flowutils/tests/test_data"


def comp_example() -> Sample:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # off-by-one $ENDDATA, tested in test_fcs_read
        return read_fcs(EXT / "flowkit/data/test_comp_example.fcs", data_offset_fix="off_by_one")


def test_csv_matrix_reads_detectors_and_values() -> None:
    spill = Spillover.from_csv(COMP_CSV)
    assert spill.matrix.shape == (14, 14)
    assert spill.detectors[:3] == ("Ax488-A", "PE-A", "PE-TR-A") and spill.fluorochromes == spill.detectors
    assert spill.matrix[0, 1] == pytest.approx(0.2986) and spill.matrix[3, 4] == pytest.approx(0.134)
    assert Spillover.from_csv(FU_DATA / "test_comp_matrix.csv") == spill


def test_csv_matrix_with_a_missing_row_is_rejected() -> None:
    with pytest.raises(CompensationError, match=r"test_comp_matrix_missing_row\.csv: 13 matrix rows for 14"):
        Spillover.from_csv(FU_DATA / "test_comp_matrix_missing_row.csv")


def test_csv_matrix_with_hash_header_and_seven_channels() -> None:
    den = Spillover.from_csv(EXT / "flowkit/data/8_color_data_set/den_comp.csv")
    assert den.matrix.shape == (8, 8) and den.detectors[0] == "TNFa FITC FLR-A"
    null = Spillover.from_csv(EXT / "flowkit/data/8_color_data_set/den_comp_null_channel.csv")
    assert null.matrix.shape == (7, 7) and "TNFa FITC FLR-A" not in null.detectors
    # the 7x7 variant is the 8x8 matrix without the nulled channel (to the 6 decimals written)
    keep = [den.detectors.index(d) for d in null.detectors]
    np.testing.assert_allclose(null.matrix, den.matrix[np.ix_(keep, keep)], atol=5e-7)


def test_bad_matrices_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("A,B\n1,0.1\n0.2,x\n")
    with pytest.raises(CompensationError, match=r"bad\.csv, row 3: value 'x' is not a number"):
        Spillover.from_csv(bad)
    bad.write_text("A,B\n1,0.1\n0.2\n")
    with pytest.raises(CompensationError, match="row 3: 1 values, expected 2"):
        Spillover.from_csv(bad)
    with pytest.raises(CompensationError, match="singular"):
        Spillover(("A", "B"), np.array([[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(CompensationError, match="needs 7 comma-separated values; found 6"):
        Spillover.from_text("2,A,B,1,0,0")
    with pytest.raises(CompensationError, match="number of detectors"):
        Spillover.from_text("two,A,B,1,0,0,1")
    with pytest.raises(CompensationError, match="NaN"):
        Spillover(("A", "B"), np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_fcs_keyword_matrix_matches_flowutils_parser() -> None:
    sample = read_fcs(EXT / "flowkit/data/100715.fcs")
    text = sample.metadata["spill"]
    matrix, names = fu_compensate.get_spill(text)
    assert sample.spillover is not None
    assert list(sample.spillover.detectors) == names
    np.testing.assert_array_equal(sample.spillover.matrix, matrix)


def test_compensation_equals_flowutils() -> None:
    sample = comp_example()
    spill = Spillover.from_csv(COMP_CSV)
    ours = compensate(sample.raw, sample.channels, spill)
    idx = [sample.channels.index(d) for d in spill.detectors]
    theirs = fu_compensate.compensate(sample.raw, spill.matrix, idx)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)
    untouched = [i for i in range(18) if i not in idx]
    np.testing.assert_array_equal(ours[:, untouched], sample.raw[:, untouched])  # FSC/SSC/Time unchanged


def test_compensation_round_trip_gives_raw_back() -> None:
    sample = comp_example()
    spill = Spillover.from_csv(COMP_CSV)
    comp = compensate(sample.raw, sample.channels, spill)
    idx = [sample.channels.index(d) for d in spill.detectors]
    back = comp.copy()
    back[:, idx] = comp[:, idx] @ spill.matrix
    np.testing.assert_allclose(back, sample.raw, rtol=1e-9, atol=1e-6)


def test_myspill_compensation_equals_flowutils_poly_oracle() -> None:
    """event_data_for_poly_test.npy is data1 (channel-to-scale) compensated with MySpill: PE, PerCP."""
    strategy = GatingStrategy.from_gatingml(EXT / "flowkit/data/gate_ref/gml/gml_matrix_poly4_gate.xml")
    spill = strategy.spillovers["MySpill"]
    assert spill.fluorochromes == ("FITC", "PE", "PerCP") and spill.detectors == ("FL1-H", "FL2-H", "FL3-H")
    sample = read_fcs(EXT / "flowkit/data/gate_ref/data1.fcs")
    gate = strategy.get_gate("Polygon4")
    values = strategy.dimension_values(sample, gate.dimensions)
    oracle = np.load(FU_DATA / "event_data_for_poly_test.npy")
    np.testing.assert_allclose(values, oracle, rtol=1e-10)


def test_spectral_unmixing_equals_flowutils_ols() -> None:
    rng = np.random.default_rng(7)
    matrix = np.abs(rng.normal(0.1, 0.05, (3, 5)))
    matrix[np.arange(3), np.arange(3)] = 1.0
    spill = Spillover(("D1", "D2", "D3", "D4", "D5"), matrix, ("F1", "F2", "F3"))
    events = rng.normal(1000, 300, (200, 5))
    ours = compensate(events, spill.detectors, spill)
    theirs = fu_compensate.compensate_spectral_ols(events, matrix)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


def test_compensation_needs_every_detector() -> None:
    spill = Spillover(("A", "B"), np.array([[1.0, 0.1], [0.0, 1.0]]))
    with pytest.raises(CompensationError, match=r"detectors \['B'\] are not channels"):
        compensate(np.zeros((2, 2)), ["A", "C"], spill)


def test_fcs_compensation_falls_back_with_a_note_when_the_file_has_no_matrix() -> None:
    sample = Sample.from_array(np.array([[1.0, 2.0]]), ["A", "B"])
    from immunorehab.cytometry import Dimension, RectangleGate

    gate = RectangleGate("g", None, (Dimension("A", "FCS"),), (0.0,), (None,))
    results = GatingStrategy([gate]).gate(sample)
    assert results.count("g") == 1
    assert any("no $SPILLOVER" in note for note in results.notes)


def test_spillover_is_immutable_and_compares_by_value() -> None:
    spill = Spillover(("A", "B"), np.array([[1.0, 0.1], [0.0, 1.0]]))
    with pytest.raises(ValueError):
        spill.matrix[0, 0] = 2.0
    assert spill == Spillover(("A", "B"), np.array([[1.0, 0.1], [0.0, 1.0]]))
    assert isinstance(CompensationError("x"), CytometryError)


def test_dimensions_may_name_a_fluorochrome_or_its_detector() -> None:
    """Gating-ML names compensated values by fluorochrome; FlowJo/FlowKit exports use the detector name."""
    spill = Spillover(("FL1-H", "FL2-H"), np.array([[1.0, 0.2], [0.1, 1.0]]), ("FITC", "PE"))
    assert spill.fluorochrome_for("PE") == "PE" and spill.fluorochrome_for("FL2-H") == "PE"
    assert spill.fluorochrome_for("FSC-H") is None
    from immunorehab.cytometry import Dimension

    sample = Sample.from_array([[10.0, 4.0]], ["FL1-H", "FL2-H"])
    strategy = GatingStrategy([], spillovers={"S": spill})
    by_fluor = strategy.dimension_values(sample, [Dimension("PE", "S")])
    by_detector = strategy.dimension_values(sample, [Dimension("FL2-H", "S")])
    expected = np.array([[10.0, 4.0]]) @ np.linalg.inv(spill.matrix)
    np.testing.assert_allclose(by_fluor[:, 0], expected[:, 1])
    np.testing.assert_array_equal(by_fluor, by_detector)
