"""Decoding the DATA segment of an FCS file with numpy (helpers of :mod:`.io_fcs`).

flowio 1.4 parses HEADER and TEXT for us; these functions turn the keywords it parsed ($DATATYPE, $BYTEORD,
$PnB, $PnR) into numpy views of the DATA bytes: any whole-byte integer width (8, 16, 24, 32, 64 bits, mixed
per channel), masked to the next power of two of $PnR as the standard says; 32/64-bit floats; ASCII.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from immunorehab.errors import FCSReadError, FCSStandardWarning

__all__ = [
    "bit_widths",
    "byte_order",
    "bytes_per_event",
    "decode_ascii",
    "decode_integers",
    "range_masks",
    "warn",
]

_ASCII_INT = re.compile(r"[0-9]{1,4}")


def warn(path: Path, message: str) -> None:
    """An FCSStandardWarning naming the file, attributed to the caller of ``read_fcs``."""
    warnings.warn(f"{path.name}: {message}", FCSStandardWarning, stacklevel=5)


def byte_order(text: dict[str, str], path: Path) -> Literal["<", ">"]:
    value = text.get("byteord", "").strip()
    try:
        order = [int(p) for p in value.split(",")]
    except ValueError:
        raise FCSReadError(
            f"{path}: $BYTEORD = {value!r} is not a list of byte positions like '1,2,3,4'."
        ) from None
    if order == sorted(order) and order == list(range(1, len(order) + 1)):
        return "<"
    if order == sorted(order, reverse=True) and sorted(order) == list(range(1, len(order) + 1)):
        return ">"
    raise FCSReadError(
        f"{path}: $BYTEORD = {value!r} (mixed byte order) is not supported; expected "
        "'1,2,3,4' (little-endian) or '4,3,2,1' (big-endian)."
    )


def bit_widths(text: dict[str, str], n_par: int, path: Path) -> list[int | None]:
    """$PnB per channel (None for ASCII '*')."""
    widths: list[int | None] = []
    for n in range(1, n_par + 1):
        value = text.get(f"p{n}b", "").strip()
        if value == "*":
            widths.append(None)
            continue
        if not _ASCII_INT.fullmatch(value) or int(value) == 0:
            raise FCSReadError(f"{path}: keyword $P{n}B = {value!r}; expected the number of bits per value.")
        widths.append(int(value))
    return widths


def _next_power_of_two(x: int) -> int:
    return 1 if x <= 1 else 1 << (x - 1).bit_length()


def range_masks(text: dict[str, str], widths: list[int], path: Path) -> list[int | None]:
    """Bit mask per integer channel: values keep the bits below the next power of two of $PnR."""
    masks: list[int | None] = []
    for n, bits in enumerate(widths, start=1):
        value = text.get(f"p{n}r", "").strip()
        try:
            rng = int(float(value))
        except (ValueError, OverflowError):
            raise FCSReadError(f"{path}: keyword $P{n}R = {value!r} is not a number.") from None
        top = _next_power_of_two(max(rng, 1))
        masks.append(top - 1 if top < (1 << bits) else None)
    return masks


def decode_integers(
    seg: memoryview, n_events: int, widths: list[int], masks: list[int | None], order: str, path: Path
) -> npt.NDArray[np.float64]:
    """Integer DATA of any byte widths (8..64, including 24) into float64, masked to $PnR."""
    bad = [w for w in widths if w % 8 or w > 64]
    if bad:
        raise FCSReadError(
            f"{path}: integer widths $PnB={bad} are not whole bytes (packed bit fields are not "
            "supported); expected 8, 16, 24, 32 or 64."
        )
    n_par = len(widths)
    if len(set(widths)) == 1 and widths[0] in (8, 16, 32, 64):
        ints = np.frombuffer(seg, dtype=f"{order}u{widths[0] // 8}").reshape(n_events, n_par)
        if any(m is not None for m in masks):
            mask_row = np.array([(1 << widths[0]) - 1 if m is None else m for m in masks], dtype=ints.dtype)
            ints = ints & mask_row
        return ints.astype(np.float64)
    per_event = sum(widths) // 8
    raw = np.frombuffer(seg, dtype=np.uint8).reshape(n_events, per_event)
    out = np.empty((n_events, n_par), dtype=np.float64)
    pos = 0
    for j, (bits, mask) in enumerate(zip(widths, masks, strict=True)):
        size = bits // 8
        column = np.zeros(n_events, dtype=np.uint64)
        for k in range(size):
            shift = 8 * k if order == "<" else 8 * (size - 1 - k)
            column |= raw[:, pos + k].astype(np.uint64) << np.uint64(shift)
        if mask is not None:
            column &= np.uint64(mask)
        out[:, j] = column
        pos += size
    return out


def decode_ascii(
    seg: memoryview, n_events: int, widths: list[int | None], path: Path
) -> npt.NDArray[np.float64]:
    """ASCII DATA ($DATATYPE/A): fixed-width fields, or delimited values when $PnB is '*'."""
    data = bytes(seg)
    n_par = len(widths)
    try:
        if all(w is None for w in widths):
            values = np.array(data.replace(b",", b" ").split(), dtype=np.float64)
        elif all(w is not None for w in widths):
            per_event = sum(w for w in widths if w is not None)
            values = np.empty(n_events * n_par, dtype=np.float64)
            k = 0
            for e in range(n_events):
                pos = e * per_event
                for w in widths:
                    assert w is not None
                    values[k] = float(data[pos : pos + w])
                    pos += w
                    k += 1
        else:
            raise FCSReadError(f"{path}: ASCII data mixes fixed widths and '*' in $PnB.")
    except ValueError as exc:
        raise FCSReadError(f"{path}: ASCII DATA value is not a number ({exc}).") from None
    if values.size != n_events * n_par:
        raise FCSReadError(
            f"{path}: ASCII DATA holds {values.size} values; $TOT x $PAR = {n_events * n_par}."
        )
    return values.reshape(n_events, n_par)


def bytes_per_event(datatype: str, widths: list[int | None], path: Path) -> int:
    if datatype == "A":
        return sum(w for w in widths if w is not None) if all(w is not None for w in widths) else 0
    if any(w is None for w in widths):
        raise FCSReadError(f"{path}: $PnB = '*' is only allowed for ASCII data ($DATATYPE/A).")
    found = sorted({w for w in widths if w is not None})
    if datatype == "F":
        if any(w != 32 for w in widths):
            warn(
                path,
                f"$DATATYPE F needs $PnB=32 for every channel, found {found}; read as 32-bit.",
            )
        return 4 * len(widths)
    if datatype == "D":
        if any(w != 64 for w in widths):
            warn(
                path,
                f"$DATATYPE D needs $PnB=64 for every channel, found {found}; read as 64-bit.",
            )
        return 8 * len(widths)
    ints = [w for w in widths if w is not None]
    bad = [w for w in ints if w % 8 or w > 64]
    if bad:
        raise FCSReadError(
            f"{path}: integer widths $PnB={bad} are not whole bytes (packed bit fields are not "
            "supported); expected 8, 16, 24, 32 or 64."
        )
    return sum(ints) // 8
