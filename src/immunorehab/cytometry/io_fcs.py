"""Reading FCS 2.0/3.0/3.1 (and LMD) files through flowio.

flowio parses the HEADER and TEXT segments (``FlowData(..., only_text=True)``); the DATA segment is then
decoded here with numpy views over the byte offsets and keywords flowio parsed. That is both a speed-up
(flowio 1.4 decodes integers through Python ``array``/``struct`` loops and builds a list for mixed
widths) and the small workaround the issue asks for where flowio 1.4 fails on valid real files:

* 24-bit and mixed-width integers (Cytek xP5 ``$PnB=24``; Stratedigm/CyFlow mixed 8/16/32-bit), with
  values masked to the next power of two of ``$PnR`` as the standard says;
* blank HEADER offsets (the offsets must come from TEXT, as for files over 99,999,999 bytes);
* several data sets chained by ``$NEXTDATA`` (``dataset=`` chooses one; without it such a file raises);
* HEADER/TEXT offset discrepancies and a ``$ENDDATA`` one byte too far (raise unless
  ``data_offset_fix`` says what to trust);
* a file holding HEADER and TEXT only (metadata with zero events, and a warning).

Whenever a file breaks the standard but can be read, an :class:`~immunorehab.errors.FCSStandardWarning`
says what was done. Everything else that is wrong raises :class:`~immunorehab.errors.FCSReadError`
(or a subclass) naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import flowio
import numpy as np
import numpy.typing as npt

from immunorehab.errors import (
    CompensationError,
    FCSDatasetError,
    FCSOffsetError,
    FCSReadError,
)

from ._fcs_data import bit_widths, byte_order, bytes_per_event, decode_ascii, decode_integers, range_masks
from ._fcs_data import warn as _warn
from .compensation import Spillover, spillover_from_metadata
from .sample import Sample

__all__ = ["DataOffsetFix", "read_fcs", "count_datasets"]

DataOffsetFix = Literal["header", "text", "off_by_one"]
_FIX_CHOICES = ("header", "text", "off_by_one")
_VERSIONS = ("2.0", "3.0", "3.1", "3.2")
_HEADER_SIZE = 58
_LARGE_FILE_LIMIT = 99_999_999
_MAX_DATASETS = 1000
_MMAP_THRESHOLD = 1 << 22  # files of 4 MiB and more are memory-mapped
Buffer = bytes | mmap.mmap
_FLOWIO_ERRORS = (
    flowio.exceptions.FlowIOException,
    ValueError,
    KeyError,
    IndexError,
    EOFError,
    OverflowError,
    TypeError,
    ZeroDivisionError,
    re.error,
    MemoryError,
)


@dataclass(frozen=True, slots=True)
class _Segment:
    """One data set: where it starts, flowio's HEADER/TEXT parse and our own HEADER offsets."""

    offset: int
    version: str
    text: dict[str, str]
    header_data: tuple[int, int] | None  # None when blank in the file


def _header_int(buf: Buffer, start: int, stop: int) -> int | None:
    """A HEADER offset field (bytes start..stop-1); None when blank."""
    field = buf[start:stop].strip()
    if not field:
        return None
    if not field.isdigit():
        raise ValueError(f"HEADER offset field {buf[start:stop]!r} is not a number")
    return int(field)


def _check_header(buf: Buffer, offset: int, path: Path) -> tuple[str, tuple[int, int] | None]:
    """Validate the fixed HEADER fields of the data set at ``offset``; return version and DATA offsets."""
    head = buf[offset : offset + _HEADER_SIZE]
    if len(head) < _HEADER_SIZE:
        where = "file" if offset == 0 else f"data set at byte {offset}"
        raise FCSReadError(
            f"{path}: {where} is too short to be FCS ({len(head)} bytes; the HEADER alone is {_HEADER_SIZE})."
        )
    version = head[3:6].decode("ascii", "replace")
    if head[:3] != b"FCS" or version not in _VERSIONS:
        raise FCSReadError(
            f"{path}: not an FCS file: HEADER starts with {head[:10]!r}, expected 'FCS2.0'/'FCS3.0'/'FCS3.1'."
        )
    try:
        text_start = _header_int(head, 10, 18)
        text_stop = _header_int(head, 18, 26)
        data_start = _header_int(head, 26, 34)
        data_stop = _header_int(head, 34, 42)
    except ValueError as exc:
        raise FCSReadError(f"{path}: invalid HEADER: {exc}.") from None
    if text_start is None or text_stop is None or text_stop <= text_start:
        raise FCSReadError(f"{path}: HEADER gives no valid TEXT segment ({text_start}-{text_stop}).")
    if offset + text_stop >= len(buf):
        raise FCSReadError(
            f"{path}: TEXT segment ends at byte {offset + text_stop} but the file has {len(buf)} bytes "
            "(truncated file?)."
        )
    data = None if data_start is None or data_stop is None else (data_start, data_stop)
    return version, data


def _flowio_source(buf: Buffer, offset: int, path: Path, patch: bool) -> BinaryIO:
    """What flowio reads: the bytes in memory, the file itself (large files), or a patched copy."""
    if patch:
        # flowio cannot parse blank HEADER offsets and refuses DATA beyond the end of file even with
        # only_text=True; hand it a copy whose HEADER DATA offsets read 0 (we keep the originals).
        return io.BytesIO(buf[: offset + 26] + b"0".rjust(8) * 2 + buf[offset + 42 :])
    if isinstance(buf, bytes):
        return io.BytesIO(buf)
    return open(path, "rb")  # noqa: SIM115 (flowio closes it)


def _parse_text(buf: Buffer, offset: int, path: Path) -> _Segment:
    """HEADER and TEXT of the data set at ``offset``, parsed by flowio."""
    version, header_data = _check_header(buf, offset, path)
    patch = header_data is None or offset + header_data[1] >= len(buf)
    try:
        source = _flowio_source(buf, offset, path, patch)
        fd = flowio.FlowData(source, only_text=True, use_header_offsets=True, nextdata_offset=offset)
    except KeyError as exc:  # flowio reads $PAR, $TOT, $DATATYPE, $PnR... by key
        raise FCSReadError(f"{path}: required keyword ${str(exc.args[0]).upper()} is missing.") from None
    except (*_FLOWIO_ERRORS, OSError) as exc:
        raise FCSReadError(f"{path}: cannot parse the TEXT segment ({type(exc).__name__}: {exc}).") from None
    text = {str(k): str(v) for k, v in fd.text.items()}
    return _Segment(offset, version, text, header_data)


def _int_keyword(text: dict[str, str], key: str, path: Path, *, default: int | None = None) -> int:
    value = text.get(key)
    if value is None or not value.strip():
        if default is not None:
            return default
        raise FCSReadError(f"{path}: required keyword ${key.upper()} is missing.")
    try:
        number = float(value.strip())
    except ValueError:
        raise FCSReadError(f"{path}: keyword ${key.upper()} = {value!r} is not a number.") from None
    if not number.is_integer() or number < 0:
        raise FCSReadError(f"{path}: keyword ${key.upper()} = {value!r} must be a non-negative integer.")
    return int(number)


def _segments(buf: Buffer, path: Path, upto: int | None) -> list[_Segment]:
    """Data sets chained by $NEXTDATA: all of them, or up to index ``upto``."""
    segments = [_parse_text(buf, 0, path)]
    seen = {0}
    while upto is None or len(segments) <= upto:
        last = segments[-1]
        nxt = _int_keyword(last.text, "nextdata", path, default=0)
        if nxt == 0:
            break
        offset = last.offset + nxt
        if offset in seen or offset >= len(buf) or len(segments) >= _MAX_DATASETS:
            _warn(
                path,
                f"$NEXTDATA of data set {len(segments) - 1} points to byte {offset}, outside the file "
                "or back to an earlier data set; ignored.",
            )
            break
        seen.add(offset)
        segments.append(_parse_text(buf, offset, path))
    return segments


def _digest(buf: Buffer) -> str | Callable[[], str]:
    """SHA-256 of the file: at once for small files, in a background thread for large ones.

    Hashing (about 60 ms per 56 MB) releases the GIL, so it overlaps with decoding and gating; the
    digest is joined the first time ``Sample.sha256`` is read.
    """
    if isinstance(buf, bytes):
        return hashlib.sha256(buf).hexdigest()
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(hashlib.sha256(buf).hexdigest()), daemon=True)
    worker.start()

    def join() -> str:
        worker.join()
        if not result:  # the thread did not run to the end here (e.g. the process was forked meanwhile)
            result.append(hashlib.sha256(buf).hexdigest())
        return result[0]

    return join


def count_datasets(path: str | Path) -> int:
    """Number of data sets in an FCS/LMD file (chained by ``$NEXTDATA``)."""
    p = Path(path)
    return len(_segments(_read_bytes(p), p, None))


def _read_bytes(path: Path) -> Buffer:
    """The file's bytes; large files are memory-mapped (read-only, no copy)."""
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size < _MMAP_THRESHOLD:
                return fh.read()
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise FCSReadError(
            f"{path}: cannot read the file ({getattr(exc, 'strerror', None) or exc})."
        ) from None


def _data_offsets(seg: _Segment, path: Path, fix: DataOffsetFix | None) -> tuple[int, int]:
    """Absolute (start, stop) byte offsets of DATA, stop inclusive, per HEADER/TEXT and ``fix``."""
    text = seg.text
    has_text = bool(text.get("begindata", "").strip()) and bool(text.get("enddata", "").strip())
    text_data = (
        (_int_keyword(text, "begindata", path), _int_keyword(text, "enddata", path)) if has_text else None
    )
    header = seg.header_data
    if fix == "header":
        if header is None or header == (0, 0):
            raise FCSOffsetError(f"{path}: data_offset_fix='header' but the HEADER gives no DATA offsets.")
        start, stop = header
    elif fix == "text":
        if text_data is None:
            raise FCSOffsetError(f"{path}: data_offset_fix='text' but $BEGINDATA/$ENDDATA are missing.")
        start, stop = text_data
    elif header is None or header == (0, 0):
        if text_data is None:
            if header == (0, 0) and _int_keyword(text, "tot", path, default=0) == 0:
                return seg.offset, seg.offset - 1  # no events at all
            raise FCSReadError(
                f"{path}: neither HEADER nor TEXT ($BEGINDATA/$ENDDATA) locate the DATA segment."
            )
        start, stop = text_data
        if header is None:
            _warn(
                path,
                "HEADER DATA offsets are blank (the standard writes 0 there); used $BEGINDATA/$ENDDATA "
                f"({start}-{stop}) from TEXT.",
            )
        elif stop <= _LARGE_FILE_LIMIT and seg.version != "2.0":
            _warn(
                path,
                "HEADER DATA offsets are 0 although DATA ends before byte 99,999,999; used "
                f"$BEGINDATA/$ENDDATA ({start}-{stop}) from TEXT.",
            )
    elif text_data is None or seg.version == "2.0" or text_data == header:
        start, stop = header
    else:
        raise FCSOffsetError(
            f"{path}: HEADER and TEXT disagree on where DATA is: HEADER says bytes {header[0]}-{header[1]}, "
            f"TEXT ($BEGINDATA/$ENDDATA) says {text_data[0]}-{text_data[1]}. Check the file with the "
            "instrument vendor, then read it with data_offset_fix='header' or 'text' to choose one."
        )
    return seg.offset + start, seg.offset + stop


def _events(buf: Buffer, seg: _Segment, path: Path, fix: DataOffsetFix | None) -> npt.NDArray[np.float64]:
    """Decode the DATA segment of one data set into (n_events, n_par) float64."""
    text = seg.text
    n_par = _int_keyword(text, "par", path)
    datatype = text.get("datatype", "").strip().upper()
    if datatype not in ("I", "F", "D", "A"):
        raise FCSReadError(f"{path}: $DATATYPE = {datatype!r}; expected I, F, D or A.")
    mode = text.get("mode", "L").strip().upper() or "L"
    if mode != "L":
        raise FCSReadError(
            f"{path}: $MODE = {mode!r} (histogram data) is not supported; only list mode 'L' is."
        )
    widths = bit_widths(text, n_par, path)
    per_event = bytes_per_event(datatype, widths, path)
    start, stop = _data_offsets(seg, path, fix)
    declared = stop - start + 1
    if declared <= 0:
        return np.empty((0, n_par), dtype=np.float64)
    if start >= len(buf):
        _warn(
            path,
            f"the file ends at byte {len(buf)}, before its DATA segment (bytes {start}-{stop}); only the "
            "HEADER and TEXT are present, so the sample has metadata and 0 events.",
        )
        return np.empty((0, n_par), dtype=np.float64)
    if stop >= len(buf):
        raise FCSReadError(
            f"{path}: DATA segment should end at byte {stop} but the file has {len(buf)} bytes "
            "(truncated file?)."
        )
    n_events = _event_count(text, declared, per_event, path, fix)
    if datatype == "A" and per_event == 0:
        return decode_ascii(memoryview(buf)[start : stop + 1], n_events, widths, path)
    seg_bytes = memoryview(buf)[start : start + n_events * per_event]
    if datatype == "A":
        return decode_ascii(seg_bytes, n_events, widths, path)
    order = byte_order(text, path)
    if datatype in ("F", "D"):
        dtype = f"{order}f{4 if datatype == 'F' else 8}"
        return np.frombuffer(seg_bytes, dtype=dtype).reshape(n_events, n_par).astype(np.float64)
    int_widths = [w for w in widths if w is not None]
    return decode_integers(seg_bytes, n_events, int_widths, range_masks(text, int_widths, path), order, path)


def _event_count(
    text: dict[str, str], declared: int, per_event: int, path: Path, fix: DataOffsetFix | None
) -> int:
    """$TOT checked against the DATA segment size (and the off-by-one $ENDDATA fix)."""
    if per_event == 0:
        return _int_keyword(text, "tot", path)
    if not text.get("tot", "").strip():
        if declared % per_event:
            raise FCSReadError(
                f"{path}: $TOT is missing and DATA ({declared} bytes) is not a whole number of "
                f"{per_event}-byte events."
            )
        return declared // per_event
    n_events = _int_keyword(text, "tot", path)
    needed = n_events * per_event
    if declared == needed:
        return n_events
    if declared == needed + 1:
        if fix == "off_by_one":
            _warn(path, "$ENDDATA points one byte past the DATA segment; the extra byte was ignored.")
            return n_events
        raise FCSOffsetError(
            f"{path}: $ENDDATA points one byte past the DATA segment ({declared} bytes for $TOT={n_events} "
            f"events of {per_event} bytes = {needed}). A known instrument-software bug; check the "
            "first events, then read it with data_offset_fix='off_by_one'."
        )
    if declared > needed:
        _warn(
            path,
            f"DATA segment has {declared - needed} bytes more than $TOT={n_events} events need; they "
            "were ignored.",
        )
        return n_events
    raise FCSReadError(
        f"{path}: DATA segment holds {declared} bytes but $TOT={n_events} events of {per_event} "
        f"bytes need {needed} (corrupt or truncated file?)."
    )


def _names(text: dict[str, str], n_par: int, path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    channels, markers = [], []
    for n in range(1, n_par + 1):
        name = text.get(f"p{n}n", "").strip()
        if not name:
            _warn(path, f"$P{n}N (channel name) is missing; the channel is called 'P{n}'.")
            name = f"P{n}"
        channels.append(name)
        markers.append(text.get(f"p{n}s", "").strip())
    dupes = sorted({c for c in channels if channels.count(c) > 1})
    if dupes:
        _warn(
            path,
            f"channel names {dupes} ($PnN) occur more than once; the standard requires unique names, so "
            "gates cannot refer to them unambiguously.",
        )
    return tuple(channels), tuple(markers)


def _spillover(text: dict[str, str], channels: tuple[str, ...], path: Path) -> Spillover | None:
    try:
        spill = spillover_from_metadata(text, source=str(path))
    except CompensationError as exc:
        _warn(path, f"the spillover keyword cannot be used ({exc}); the sample has no spillover matrix.")
        return None
    if spill is not None and any(d not in channels for d in spill.detectors):
        missing = [d for d in spill.detectors if d not in channels]
        _warn(
            path,
            f"the spillover matrix names detectors {missing} that are not channels; it cannot be applied.",
        )
        return None
    return spill


def read_fcs(
    path: str | Path, *, dataset: int | None = None, data_offset_fix: DataOffsetFix | None = None
) -> Sample:
    """Read one data set of an FCS 2.0/3.0/3.1 or LMD file.

    Parameters
    ----------
    path : str or Path
        The file.
    dataset : int, optional
        Index (0-based) of the data set in a file that chains several through ``$NEXTDATA`` (e.g.
        Beckman LMD files). Without it, a file with more than one data set raises
        :class:`~immunorehab.errors.FCSDatasetError` so that no data set is picked silently.
    data_offset_fix : {"header", "text", "off_by_one"}, optional
        How to read a file whose DATA offsets are inconsistent: trust the HEADER offsets, trust TEXT
        ``$BEGINDATA``/``$ENDDATA``, or accept an ``$ENDDATA`` one byte past the end of DATA. Without it such
        files raise :class:`~immunorehab.errors.FCSOffsetError`.

    Returns
    -------
    Sample
        Raw DATA values, channel-to-scale values, names, metadata and the file's SHA-256.

    Raises
    ------
    FCSReadError
        The file is not FCS, is truncated or corrupt, or uses an unsupported layout; the message names the
        file and the problem. Subclasses: :class:`FCSOffsetError`, :class:`FCSDatasetError`.

    Warns
    -----
    FCSStandardWarning
        The file breaks the standard in a way that could be worked around (the message says how).
    """
    p = Path(path)
    if data_offset_fix is not None and data_offset_fix not in _FIX_CHOICES:
        raise FCSReadError(f"{p}: data_offset_fix must be one of {_FIX_CHOICES}, got {data_offset_fix!r}.")
    if dataset is not None and (not isinstance(dataset, int) or dataset < 0):
        raise FCSDatasetError(f"{p}: dataset must be a data set index >= 0, got {dataset!r}.")
    buf = _read_bytes(p)
    segments = _segments(buf, p, None if dataset is None else dataset)
    if dataset is None and len(segments) > 1:
        raise FCSDatasetError(
            f"{p}: the file holds more than one data set ($NEXTDATA = {segments[0].text.get('nextdata')}); "
            "choose one with dataset=0, 1, ... (see count_datasets())."
        )
    index = dataset or 0
    if index >= len(segments):
        raise FCSDatasetError(f"{p}: dataset={index} asked, but the file holds {len(segments)} data set(s).")
    seg = segments[index]
    raw = _events(buf, seg, p, data_offset_fix)
    channels, markers = _names(seg.text, raw.shape[1], p)
    digest = _digest(buf)
    del buf
    return Sample(
        name=p.stem,
        raw=raw,
        channels=channels,
        markers=markers,
        metadata=seg.text,
        version=seg.version,
        sha256=digest,
        path=p,
        dataset=index,
        spillover=_spillover(seg.text, channels, p),
    )
