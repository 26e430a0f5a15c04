"""read_fcs against every FCS/LMD file in ../shared/data/external and the oracles documented there.

Oracles (see ../shared/data/external/README.md): fcsparser's asserted first rows
(expected_first_rows_from_fcsparser_tests.json), FlowIO's truth arrays (data1 raw and pre-processed, B01
pre-processed), the literal values in the README table (variable_int, coulter data set 2, cyflow) and the
documented shapes. Deliberately corrupt or non-compliant files must raise a CytometryError naming the file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from immunorehab.cytometry import Sample, count_datasets, read_fcs
from immunorehab.errors import (
    CytometryError,
    FCSDatasetError,
    FCSOffsetError,
    FCSReadError,
    FCSStandardWarning,
)

REPO = Path(__file__).resolve().parents[3]
EXT = REPO.parent / "shared" / "data" / "external"
if not EXT.is_dir():  # pragma: no cover - the shared data folder is part of the workspace
    pytest.skip(f"external oracle folder {EXT} is missing", allow_module_level=True)

FCSP = "fcsparser/fcsparser/tests/data/FlowCytometers/"
ALL_FILES = sorted(
    str(p.relative_to(EXT)) for p in EXT.rglob("*") if p.suffix.lower() in (".fcs", ".lmd") and p.is_file()
)

# Every file: ("load", (events, channels), read_fcs keyword arguments, warning fragment or None)
#          or ("raise", error class, message fragment).
OFF_BY_ONE = {"data_offset_fix": "off_by_one"}
# MACSQuant 3.1 files declare '$SPILLOVER/6,FL2-A,...,FL7-H' with no coefficients: unusable, so a warning
BAD_SPILL = "SPILLOVER: declares 6 detectors, so needs 43 comma-separated values; found 7"
EXPECTED: dict[str, tuple] = {
    FCSP + "Cytek_xP5/Cytek_xP5.fcs": ("load", (23126, 8), {}, None),
    FCSP + "FACSCaliburHTS/Sample_Well_A02.fcs": ("load", (37395, 8), {}, None),
    FCSP + "FACS_Diva/facs_diva_test.fcs": ("load", (83411, 12), {}, None),
    FCSP + "Fortessa/FCS_3.0_Fortessa_PBS_Specimen_001_A1_A01.fcs": ("load", (11585, 11), {}, None),
    FCSP + "HTS_BD_LSR-II/HTS_BD_LSR_II_Mixed_Specimen_001_D6_D06.fcs": ("load", (14945, 11), {}, None),
    FCSP + "MiltenyiBiotec/FCS2.0/EY_2013-07-19_PBS_FCS_2.0_Custom_Without_Add_Well_A1.001.fcs": (
        "load",
        (10000, 16),
        {},
        None,
    ),
    FCSP + "MiltenyiBiotec/FCS3.0/FCS3.0_Custom_Compatible.fcs": ("load", (10000, 16), {}, None),
    FCSP + "MiltenyiBiotec/FCS3.1/EY_2013-07-19_PBS_FCS_3.1_Custom_Add_Well_A1.001.fcs": (
        "load",
        (10000, 19),
        OFF_BY_ONE,
        ("one byte past", BAD_SPILL),
    ),
    FCSP + "MiltenyiBiotec/FCS3.1/EY_2013-07-19_PBS_FCS_3.1_Custom_Without_Add_Well_A1.001.fcs": (
        "load",
        (10000, 19),
        OFF_BY_ONE,
        ("one byte past", BAD_SPILL),
    ),
    FCSP + "MiltenyiBiotec/FCS3.1/EY_2013-07-19_PBS_FCS_3.1_Well_A1.001.fcs": (
        "load",
        (10000, 19),
        OFF_BY_ONE,
        ("one byte past", BAD_SPILL),
    ),
    FCSP + "MiltenyiBiotec/FCS3.1/SG_2014-09-26_Duplicate_Names.fcs": (
        "load",
        (8129, 9),
        OFF_BY_ONE,
        "one byte past",
    ),
    FCSP + "corrupted/corrupted.fcs": ("raise", FCSReadError, "too short to be FCS"),
    FCSP + "cyflow_cube_8/cyflow_cube_8.fcs": ("load", (725, 10), {}, None),
    FCSP + "cytek-nl-2000/sample_header.fcs": ("load", (0, 27), {}, "only the HEADER and TEXT are present"),
    FCSP + "fake_bitmask_error/fcs1_cleaned.lmd": ("load", (50000, 7), {}, None),
    FCSP + "fake_large_fcs/fake_large_fcs.fcs": ("load", (11585, 11), {}, "HEADER DATA offsets are blank"),
    "flowio/data/fcs_files/100715.fcs": ("load", (65016, 16), {}, None),
    "flowio/data/fcs_files/3FITC_4PE_004.fcs": ("load", (94569, 4), {}, None),
    "flowio/data/fcs_files/B01 KC-A-W---91-US.fcs": ("load", (1589, 14), {}, None),
    "flowio/data/fcs_files/G11.fcs": ("load", (5785, 12), {}, None),
    "flowio/data/fcs_files/coulter.lmd": ("raise", FCSDatasetError, "more than one data set"),
    "flowio/data/fcs_files/data1.fcs": ("load", (13367, 8), {}, None),
    "flowio/data/fcs_files/data_start_offset_discrepancy_example.fcs": (
        "raise",
        FCSOffsetError,
        "HEADER says bytes 5555-6188, TEXT ($BEGINDATA/$ENDDATA) says 6081-6188",
    ),
    "flowio/data/fcs_files/data_stop_offset_discrepancy_example.fcs": (
        "raise",
        FCSOffsetError,
        "HEADER says bytes 6081-6944, TEXT ($BEGINDATA/$ENDDATA) says 6081-6188",
    ),
    "flowio/data/fcs_files/variable_int_example.fcs": (
        "load",
        (2, 26),
        {},
        "spillover matrix names detectors",
    ),
    "flowkit/data/100715.fcs": ("load", (65016, 16), {}, None),
    "flowkit/data/gate_ref/data1.fcs": ("load", (13367, 8), {}, None),
    "flowkit/data/index_sorted/index_sorted_example.fcs": ("load", (384, 13), {}, None),
    "flowkit/data/multi_dataset_fcs/coulter.lmd": ("raise", FCSDatasetError, "more than one data set"),
    "flowkit/data/noncompliant/data_start_offset_discrepancy_example.fcs": (
        "raise",
        FCSOffsetError,
        "HEADER says bytes 5555-6188",
    ),
    "flowkit/data/noncompliant/data_stop_offset_discrepancy_example.fcs": (
        "raise",
        FCSOffsetError,
        "HEADER says bytes 6081-6944",
    ),
    "flowkit/data/simple_diamond_example/test_data_diamond_01.fcs": ("load", (200000, 2), {}, None),
    "flowkit/data/simple_line_example/data_set_simple_line_100.fcs": ("load", (100, 2), {}, None),
    "flowkit/data/test_comp_example.fcs": ("load", (10703, 18), OFF_BY_ONE, "one byte past"),
    "flowkit/data/test_data_2d_01.fcs": ("load", (10000, 2), {}, None),
    "flowutils/examples/test_data_2d_01.fcs": ("load", (10000, 2), {}, None),
}


def read(rel: str, **kwargs: object) -> Sample:
    """Read an external file, failing on any warning (tests that expect one use pytest.warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_fcs(EXT / rel, **kwargs)  # type: ignore[arg-type]


def read_expecting(path: Path, kwargs: dict[str, object], fragments: str | tuple[str, ...]) -> Sample:
    """Read and check the FCSStandardWarnings: each expected fragment seen, no other warning."""
    fragments = (fragments,) if isinstance(fragments, str) else fragments
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sample = read_fcs(path, **kwargs)  # type: ignore[arg-type]
    messages = [str(w.message) for w in record]
    assert all(issubclass(w.category, FCSStandardWarning) for w in record)
    assert all(m.startswith(path.name + ": ") for m in messages), messages
    for fragment in fragments:
        assert any(fragment in m for m in messages), (fragment, messages)
    assert all(any(f in m for f in fragments) for m in messages), messages
    return sample


def test_every_external_file_has_an_expectation() -> None:
    assert len(ALL_FILES) == 36, "the README lists 36 FCS/LMD files"
    assert sorted(EXPECTED) == ALL_FILES


@pytest.mark.parametrize("rel", ALL_FILES)
def test_every_external_file_loads_or_raises_clearly(rel: str) -> None:
    expectation = EXPECTED[rel]
    path = EXT / rel
    if expectation[0] == "raise":
        _, error, fragment = expectation
        with pytest.raises(error) as info:
            read_fcs(path)
        assert isinstance(info.value, CytometryError)
        assert str(path) in str(info.value) and fragment in str(info.value)
        return
    _, shape, kwargs, warning = expectation
    sample = read_expecting(path, kwargs, () if warning is None else warning)
    assert sample.raw.shape == shape and sample.scaled.shape == shape
    assert sample.n_events == shape[0] and len(sample.channels) == shape[1] == len(sample.markers)
    assert sample.raw.dtype == np.float64 and not sample.raw.flags.writeable
    assert sample.path == path and sample.name == path.stem
    assert sample.sha256 == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def test_valid_files_that_flowio_1_4_rejects_load_only_where_the_standard_allows() -> None:
    """Off-by-one $ENDDATA files raise without the explicit override (README: 'only with an override')."""
    for rel, expectation in EXPECTED.items():
        if expectation[0] == "load" and expectation[2] == OFF_BY_ONE:
            with pytest.raises(FCSOffsetError, match="data_offset_fix='off_by_one'"):
                read_fcs(EXT / rel)


# -- fcsparser's asserted first rows -------------------------------------------------------------

FCSPARSER = json.loads((EXT / "fcsparser" / "expected_first_rows_from_fcsparser_tests.json").read_text())
DATA_CASES = {k: v for k, v in FCSPARSER["cases"].items() if "first_rows" in v}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_first_rows_equal_fcsparser(case: str) -> None:
    spec = DATA_CASES[case]
    rel = "fcsparser/" + spec["file"]
    expectation = EXPECTED[rel]
    sample = read_expecting(EXT / rel, expectation[2], expectation[3] or ())
    rows = np.array(spec["first_rows"], dtype=np.float64)
    # 4 decimals as fcsparser asserts; or 1e-7 relative where the JSON prints float32 values with 9 digits
    # (fake_large_fcs: 153640.969 is the float32 153640.96875)
    np.testing.assert_allclose(
        sample.raw[: len(rows), : rows.shape[1]], rows, rtol=1e-7, atol=1.5 * 10.0 ** -spec["decimal"]
    )
    if "expected_shape" in spec:
        assert list(sample.raw.shape) == spec["expected_shape"]


def test_cytek_xp5_24bit_integers_decode() -> None:
    """flowio 1.4 returns no events for 3-byte integers; we decode them (big-endian, $PnB=24)."""
    sample = read(FCSP + "Cytek_xP5/Cytek_xP5.fcs")
    assert sample.metadata["p1b"] == "24" and sample.metadata["byteord"] == "4,3,2,1"
    np.testing.assert_array_equal(sample.raw[:2, :4], [[0, 286, 164, 154], [0, 171, 128, 153]])
    # 24-bit values are masked to $PnR (1024 for FL1): the decoded values stay below it
    assert sample.raw[:, 3].max() < 1024


def test_nl2000_header_only_file_gives_metadata_and_no_events() -> None:
    sample = read_expecting(EXT / FCSP / "cytek-nl-2000/sample_header.fcs", {}, "0 events")
    # fcsparser counts 200 entries: the 199 TEXT keywords plus its own '__header__' entry
    assert len(sample.metadata) == 199
    assert sample.metadata["p9b"] == "32"
    assert sample.n_events == 0 and sample.raw.shape == (0, 27)


# -- FlowIO's truth arrays and the README's literal values ----------------------------------------


def test_data1_raw_and_channel_to_scale_equal_flowio_truth() -> None:
    sample = read("flowkit/data/gate_ref/data1.fcs")
    raw = np.load(EXT / "flowio/data/truth/data1_original_events.npy")
    pre = np.load(EXT / "flowio/data/truth/data1_preprocessed.npy")
    np.testing.assert_array_equal(sample.raw, raw)
    np.testing.assert_allclose(sample.scaled, pre, rtol=1e-12, atol=0)
    # README: FL1-H has $PnE=4,0 -> 10**(4x/1024); SSC-H $P2G=8; FSC-H $P1G=3.67
    np.testing.assert_allclose(sample.scaled[:, 2], 10 ** (4 * raw[:, 2] / 1024), rtol=1e-12)
    np.testing.assert_allclose(sample.scaled[:, 1], raw[:, 1] / 8, rtol=1e-15)
    np.testing.assert_allclose(sample.scaled[:, 0], raw[:, 0] / 3.67, rtol=1e-15)
    assert sample.channels == ("FSC-H", "SSC-H", "FL1-H", "FL2-H", "FL3-H", "FL2-A", "FL4-H", "Time")
    assert sample.markers[2] == "CD4 FITC" and sample.spillover is None and sample.version == "2.0"


def test_b01_preprocessed_events_equal_flowio_truth() -> None:
    sample = read("flowio/data/fcs_files/B01 KC-A-W---91-US.fcs")
    truth = np.load(EXT / "flowio/data/truth/B01 KC-A-W---91-US_preprocessed_events.npy")
    np.testing.assert_allclose(sample.scaled, truth, rtol=1e-12, atol=0)
    assert sample.spillover is not None and sample.version == "3.1"


VARIABLE_INT = [
    49135, 61373, 48575, 49135, 61373, 48575, 7523, 598, 49135, 61373, 48575, 49135, 61373, 48575, 28182,
    61200, 48575, 49135, 32445, 30797, 19057, 49135, 61373, 48575, 5969, 8265081, 61266, 48575, 49135, 20925,
    61265, 48575, 27961, 25200, 61287, 48575, 9795, 49135, 29117, 49135, 61373, 48575, 61228, 48575, 22,
    21760,
    49135, 20413, 49135, 23997, 19807, 15691602,
]  # fmt: skip


def test_variable_width_integers_masked_to_range() -> None:
    sample = read_expecting(
        EXT / "flowio/data/fcs_files/variable_int_example.fcs", {}, "spillover matrix names"
    )
    assert sample.raw.ravel().tolist() == VARIABLE_INT
    # the odd $TIMESTEP ('xxxxxxxxx') is ignored for channel-to-scale: Time stays as stored
    np.testing.assert_array_equal(sample.scaled[:, -1], sample.raw[:, -1])


@pytest.mark.parametrize("which", ["start", "stop"])
def test_offset_discrepancy_override(which: str) -> None:
    """Both Stratedigm files hold the variable_int events at the TEXT offsets."""
    path = EXT / f"flowkit/data/noncompliant/data_{which}_offset_discrepancy_example.fcs"
    sample = read_expecting(path, {"data_offset_fix": "text"}, "spillover matrix names")
    assert sample.raw.ravel().tolist() == VARIABLE_INT
    if which == "stop":  # the HEADER's end lies beyond the end of the file
        with pytest.raises(FCSReadError, match="truncated"):
            read_fcs(path, data_offset_fix="header")


COULTER_2 = [
    61056, 131840, 46, 324, 10309, 104, 11912, 0, 257280, 378656, 139, 1728, 58688, 354, 58720, 0,
    164128, 305376, 159, 924, 29024, 208, 29728, 0,
]  # fmt: skip


@pytest.mark.parametrize(
    "rel", ["flowio/data/fcs_files/coulter.lmd", "flowkit/data/multi_dataset_fcs/coulter.lmd"]
)
def test_multi_dataset_lmd(rel: str) -> None:
    path = EXT / rel
    assert count_datasets(path) == 2
    with pytest.raises(FCSOffsetError, match="one byte past"):  # README: data set 1 has an off-by-one offset
        read_fcs(path, dataset=0)
    first = read_expecting(path, {"dataset": 0, **OFF_BY_ONE}, "one byte past")
    second = read(rel, dataset=1)
    assert first.raw.shape == second.raw.shape == (18110, 8)
    assert (first.version, second.version) == ("2.0", "3.0")
    assert second.raw[:3].ravel().tolist() == COULTER_2
    assert first.dataset == 0 and second.dataset == 1
    with pytest.raises(FCSDatasetError, match="holds 2 data set"):
        read_fcs(path, dataset=2)


def test_cyflow_mixed_widths_and_bitmask() -> None:
    sample = read(FCSP + "cyflow_cube_8/cyflow_cube_8.fcs")
    np.testing.assert_array_equal(
        sample.raw[:2], [[8, 7, 15, 15, 5, 8, 7, 6, 23, 0], [6, 7, 13, 14, 6, 9, 10, 4, 23, 0]]
    )


def test_test_comp_example_raw_equals_the_float_dump() -> None:
    sample = read_expecting(EXT / "flowkit/data/test_comp_example.fcs", OFF_BY_ONE, "one byte past")
    dump = np.fromfile(EXT / "flowkit/data/test_comp_example.npy").reshape(-1, 18)
    np.testing.assert_array_equal(sample.raw, dump)
    np.testing.assert_array_equal(
        sample.raw, np.load(EXT / "flowutils/tests/test_data/test_comp_event_data.npy")
    )
    # its $SPILL is an identity matrix (README)
    assert sample.spillover is not None and np.array_equal(sample.spillover.matrix, np.eye(14))


def test_instrument_metadata_from_the_readme_table() -> None:
    facscan = read("flowio/data/fcs_files/3FITC_4PE_004.fcs")
    assert facscan.metadata["cyt"] == "FACScan" and facscan.n_events == int(facscan.metadata["tot"])
    aria = read("flowkit/data/100715.fcs")
    assert aria.spillover is not None and aria.spillover.matrix.shape == (13, 13)
    assert {"CD3", "CD4", "CD8", "CCR7"} <= {m.split()[0] for m in aria.markers if m}
    diva = read(FCSP + "FACS_Diva/facs_diva_test.fcs")
    assert diva.spillover is not None
    sorted_plate = read("flowkit/data/index_sorted/index_sorted_example.fcs")
    wells = [
        w
        for k, v in sorted_plate.metadata.items()
        if k.startswith("index sorting locations_")
        for w in v.split(";")
        if w
    ]
    assert len(wells) == 384
    diamond = read("flowkit/data/simple_diamond_example/test_data_diamond_01.fcs")
    assert diamond.metadata["datatype"] == "F" and diamond.version == "3.1"


def test_duplicate_channel_names_warn(tmp_path: Path) -> None:
    """The MACSQuant 'Duplicate_Names' file reads with unique $PnN; a file repeating a $PnN warns, and gates
    cannot refer to the ambiguous name."""
    sample = read_expecting(
        EXT / FCSP / "MiltenyiBiotec/FCS3.1/SG_2014-09-26_Duplicate_Names.fcs", OFF_BY_ONE, "one byte past"
    )
    assert len(set(sample.channels)) == len(sample.channels) == 9
    data1 = (EXT / "flowkit/data/gate_ref/data1.fcs").read_bytes()
    dup = tmp_path / "dup.fcs"
    dup.write_bytes(data1.replace(b"FL2-A", b"FL2-H", 1))  # same length: offsets stay valid
    twice = read_expecting(dup, {}, "occur more than once")
    with pytest.raises(CytometryError, match="ambiguous"):
        twice.channel_index("FL2-H")


def test_bad_arguments_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FCSReadError, match="cannot read the file"):
        read_fcs(tmp_path / "missing.fcs")
    with pytest.raises(FCSReadError, match="data_offset_fix must be one of"):
        read_fcs(EXT / "flowkit/data/gate_ref/data1.fcs", data_offset_fix="guess")  # type: ignore[arg-type]
    with pytest.raises(FCSDatasetError, match="dataset must be"):
        read_fcs(EXT / "flowkit/data/gate_ref/data1.fcs", dataset=-1)


def test_sample_from_array_and_channel_lookup() -> None:
    events = np.arange(12, dtype=float).reshape(4, 3)
    sample = Sample.from_array(events, ["FSC-A", "FITC-A", "PE-A"], markers=["", "CD3", "CD4"], name="s1")
    assert sample.scaled is sample.raw and sample.n_events == 4
    assert sample.channel_index("PE-A") == 2 and sample.channel_index("CD3") == 1
    events[0, 0] = 99  # the sample keeps its own copy
    assert sample.raw[0, 0] == 0
    with pytest.raises(CytometryError, match="channels are FSC-A, FITC-A, PE-A"):
        sample.channel_index("APC-A")
    with pytest.raises(CytometryError, match="unique"):
        Sample.from_array(events, ["A", "A", "B"])


# -- layouts no external file covers: crafted FCS 3.1 files -----------------------------------------


def make_fcs(path: Path, keywords: dict[str, str], data: bytes, *, version: str = "3.1") -> Path:
    """A minimal standard FCS file: HEADER, TEXT (delimiter '/', fixed-width offsets), DATA."""
    body = "".join(f"{k}/{v}/" for k, v in keywords.items())
    text_len = len(("/" + body + "$BEGINDATA/00000000/$ENDDATA/00000000/").encode())
    start = 58 + text_len
    stop = start + len(data) - 1
    text = ("/" + body + f"$BEGINDATA/{start:08d}/$ENDDATA/{stop:08d}/").encode()
    header = f"FCS{version}    {58:>8}{58 + text_len - 1:>8}{start:>8}{stop:>8}{0:>8}{0:>8}"
    path.write_bytes(header.encode() + text + data)
    return path


def channel_keywords(
    datatype: str, order: str, widths: list[str], ranges: list[int], n: int
) -> dict[str, str]:
    kw = {"$DATATYPE": datatype, "$BYTEORD": order, "$MODE": "L", "$PAR": str(len(widths)), "$TOT": str(n)}
    for i, (w, r) in enumerate(zip(widths, ranges, strict=True), start=1):
        kw |= {f"$P{i}N": f"C{i}", f"$P{i}B": w, f"$P{i}R": str(r), f"$P{i}E": "0,0"}
    return kw


def test_double_big_endian_and_24bit_little_endian(tmp_path: Path) -> None:
    values = np.array([[1.5, -2.25], [1e10, 3.0]])
    kw = channel_keywords("D", "4,3,2,1", ["64", "64"], [1024, 1024], 2)
    sample = read(str(make_fcs(tmp_path / "d.fcs", kw, values.astype(">f8").tobytes())))
    np.testing.assert_array_equal(sample.raw, values)
    ints = [[1, 70000, 5], [16777215, 2, 300]]  # 24-bit, 24-bit, 16-bit (mixed widths)
    data = b"".join(
        v.to_bytes(3, "little") + w.to_bytes(3, "little") + x.to_bytes(2, "little") for v, w, x in ints
    )
    kw = channel_keywords("I", "1,2,3,4", ["24", "24", "16"], [16777216, 100000, 256], 2)
    sample = read(str(make_fcs(tmp_path / "i24.fcs", kw, data)))
    # $P2R=100000 -> mask 2**17-1; $P3R=256 -> mask 255
    np.testing.assert_array_equal(sample.raw, [[1, 70000 & 131071, 5], [16777215, 2, 300 & 255]])


def test_ascii_fixed_width_and_delimited(tmp_path: Path) -> None:
    kw = channel_keywords("A", "1,2,3,4", ["4", "3"], [1024, 1024], 2)
    sample = read(str(make_fcs(tmp_path / "a.fcs", kw, b"  12 34 -56  7")))
    np.testing.assert_array_equal(sample.raw, [[12, 34], [-56, 7]])
    kw = channel_keywords("A", "1,2,3,4", ["*", "*"], [1024, 1024], 2)
    sample = read(str(make_fcs(tmp_path / "star.fcs", kw, b"1.5,2\n3 4e2\n")))
    np.testing.assert_array_equal(sample.raw, [[1.5, 2.0], [3.0, 400.0]])


def test_unsupported_layouts_raise_clearly(tmp_path: Path) -> None:
    kw = channel_keywords("I", "1,2,3,4", ["10", "16"], [1024, 1024], 1)
    with pytest.raises(FCSReadError, match=r"widths \$PnB=\[10\] are not whole bytes"):
        read_fcs(make_fcs(tmp_path / "packed.fcs", kw, b"\x00" * 4))
    kw = channel_keywords("F", "3,4,1,2", ["32"], [1024], 1)
    with pytest.raises(FCSReadError, match="mixed byte order"):
        read_fcs(make_fcs(tmp_path / "vax.fcs", kw, b"\x00" * 4))
    kw = channel_keywords("F", "1,2,3,4", ["32"], [1024], 1) | {"$MODE": "C"}
    with pytest.raises(FCSReadError, match="histogram data"):
        read_fcs(make_fcs(tmp_path / "hist.fcs", kw, b"\x00" * 4))
    kw = channel_keywords("F", "1,2,3,4", ["32"], [1024], 3)
    with pytest.raises(FCSReadError, match=r"holds 8 bytes but \$TOT=3 events of 4 bytes need 12"):
        read_fcs(make_fcs(tmp_path / "short.fcs", kw, b"\x00" * 8))
    kw = channel_keywords("F", "1,2,3,4", ["32"], [1024], 1)
    del kw["$PAR"]
    with pytest.raises(FCSReadError, match=r"required keyword \$PAR is missing"):
        read_fcs(make_fcs(tmp_path / "nopar.fcs", kw, b"\x00" * 4))
