"""Fuzzing the FCS read boundary: any bytes, any truncation or corruption of a valid file must give either a
valid Sample or a CytometryError (never another exception, never a hang)."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from immunorehab.cytometry import Sample, read_fcs
from immunorehab.errors import CytometryError, FCSStandardWarning

REPO = Path(__file__).resolve().parents[2]
EXT = REPO.parent / "shared" / "data" / "external"
if not EXT.is_dir():  # pragma: no cover
    pytest.skip(f"external oracle folder {EXT} is missing", allow_module_level=True)

FCSP = "fcsparser/fcsparser/tests/data/FlowCytometers/"
VALID = {
    "data1": (EXT / "flowkit/data/gate_ref/data1.fcs", {}),
    "variable_int": (EXT / "flowio/data/fcs_files/variable_int_example.fcs", {}),
    "cytek_24bit": (EXT / FCSP / "Cytek_xP5/Cytek_xP5.fcs", {}),
    "cyflow_mixed": (EXT / FCSP / "cyflow_cube_8/cyflow_cube_8.fcs", {}),
    "coulter_2": (EXT / "flowio/data/fcs_files/coulter.lmd", {"dataset": 1}),
    "float_3_1": (EXT / "flowkit/data/simple_line_example/data_set_simple_line_100.fcs", {}),
}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TMP = Path(tempfile.mkdtemp(prefix="fcs-fuzz-"))


@contextmanager
def strict_warnings() -> Iterator[None]:
    """FCSStandardWarning is the documented way to report a workaround; anything else is a bug."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", FCSStandardWarning)
        yield


def check_read(data: bytes, name: str = "fuzz.fcs", **kwargs: object) -> None:
    path = _TMP / name
    path.write_bytes(data)
    with strict_warnings():
        try:
            sample = read_fcs(path, **kwargs)  # type: ignore[arg-type]
        except CytometryError as exc:
            assert str(path) in str(exc) or path.name in str(exc), str(exc)
            return
    assert isinstance(sample, Sample)
    assert sample.raw.ndim == 2 and sample.raw.shape[1] == len(sample.channels) == len(sample.markers)
    assert sample.raw.dtype == np.float64
    _ = sample.scaled  # channel-to-scale must not fail either
    assert len(sample.sha256) == 64


@SETTINGS
@given(st.binary(max_size=4096))
def test_any_bytes(data: bytes) -> None:
    check_read(data)


@SETTINGS
@given(st.binary(max_size=2048))
def test_any_bytes_after_an_fcs_magic(data: bytes) -> None:
    check_read(b"FCS3.1    " + data)


@SETTINGS
@given(st.sampled_from(sorted(VALID)), st.floats(min_value=0.0, max_value=1.0))
def test_truncated_valid_files(which: str, fraction: float) -> None:
    path, kwargs = VALID[which]
    data = path.read_bytes()
    check_read(data[: int(len(data) * fraction)], **kwargs)


@SETTINGS
@given(
    st.sampled_from(sorted(VALID)),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=4000), st.binary(min_size=1, max_size=8)), max_size=6
    ),
)
def test_corrupted_header_and_text(which: str, edits: list[tuple[int, bytes]]) -> None:
    """Overwrite bytes in the HEADER/TEXT region (offsets, keywords, delimiters) of a valid file."""
    path, kwargs = VALID[which]
    data = bytearray(path.read_bytes())
    for pos, chunk in edits:
        pos = min(pos, len(data) - len(chunk))
        data[pos : pos + len(chunk)] = chunk
    check_read(bytes(data), **kwargs)


KEYWORDS = [
    b"$PAR",
    b"$TOT",
    b"$DATATYPE",
    b"$BYTEORD",
    b"$P1B",
    b"$P1R",
    b"$NEXTDATA",
    b"$BEGINDATA",
    b"$MODE",
]


@SETTINGS
@given(
    st.sampled_from(sorted(VALID)),
    st.sampled_from(KEYWORDS),
    st.sampled_from([b"0", b"-1", b"99999999999", b"x", b"", b"3.5", b"1,2", b"*", b"24", b"A", b"C", b"D"]),
)
def test_odd_keyword_values(which: str, keyword: bytes, value: bytes) -> None:
    """Replace one keyword's value (lengths change, so the offsets after it shift too)."""
    path, kwargs = VALID[which]
    data = path.read_bytes()
    start = data.find(keyword)
    if start < 0:
        return
    delim = data[start - 1 : start]
    value_start = start + len(keyword) + 1
    value_end = data.find(delim, value_start)
    check_read(data[:value_start] + value + data[value_end:], **kwargs)
