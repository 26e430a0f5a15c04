"""Scale transforms of Gating-ML 2.0 (section 6) and FlowJo.

Every transform is a frozen dataclass (a declaration) with vectorised ``apply`` and ``inverse``:

==========================  ====================================================================
``LinearTransform``         ``flin(x, T, A) = (x + A) / (T + A)``
``LogTransform``            ``flog(x, T, M) = log10(x / T) / M + 1`` (NaN for x <= 0)
``AsinhTransform``          ``fasinh(x, T, M, A) = (asinh(x sinh(M ln10) / T) + A ln10) / ((M + A) ln10)``
``LogicleTransform``        Parks, Roederer & Moore 2006; Moore & Parks 2012 (``flowutils`` C code)
``HyperlogTransform``       Bagwell 2005, Gating-ML 2.0 parametrisation (``flowutils`` C code)
``FlowJoBiexTransform``     FlowJo's biexponential (a logicle variant computed as a lookup table)
``RatioTransform``          ``fratio(x, y, A, B, C) = A (x - B) / (y - C)`` (two channels)
==========================  ====================================================================

Logicle and hyperlog are evaluated by flowutils (the C implementation of Moore & Parks that FlowKit
also uses); :mod:`immunorehab.cytometry._fastlogicle` provides a vectorised path for large arrays that
agrees with flowutils to 1e-9 relative (tested against it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from flowutils import transforms as fu_transforms
from scipy.optimize import brentq

from immunorehab.errors import TransformError

from . import _fastlogicle

__all__ = [
    "AsinhTransform",
    "FlowJoBiexTransform",
    "HyperlogTransform",
    "LinearTransform",
    "LogTransform",
    "LogicleTransform",
    "RatioTransform",
    "ScaleTransform",
    "Transform",
]

FloatArray = npt.NDArray[np.float64]
_LN10 = math.log(10.0)


def _as_float(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


@runtime_checkable
class ScaleTransform(Protocol):
    """A one-channel scale transform."""

    def apply(self, x: npt.ArrayLike) -> FloatArray:
        """Transform data values to the scale."""
        ...

    def inverse(self, y: npt.ArrayLike) -> FloatArray:
        """Transform scale values back to data values."""
        ...


def _positive(name: str, **params: float) -> None:
    for key, value in params.items():
        if not math.isfinite(value) or value <= 0:
            raise TransformError(f"{name}: parameter {key} must be a finite number > 0, got {value!r}.")


@dataclass(frozen=True, slots=True)
class LinearTransform:
    """Gating-ML ``flin``: ``(x + A) / (T + A)``; maps [-A, T] to [0, 1].

    Parameters
    ----------
    t : float
        Top of scale (``T`` > 0), in data units.
    a : float
        Bottom extension (``0 <= A <= T``), in data units.
    """

    t: float = 262144.0
    a: float = 0.0

    def __post_init__(self) -> None:
        _positive("flin", T=self.t)
        if not (0 <= self.a <= self.t):
            raise TransformError(f"flin: parameter A must be in [0, T={self.t}], got {self.a!r}.")

    def apply(self, x: npt.ArrayLike) -> FloatArray:
        return (_as_float(x) + self.a) / (self.t + self.a)

    def inverse(self, y: npt.ArrayLike) -> FloatArray:
        return _as_float(y) * (self.t + self.a) - self.a


@dataclass(frozen=True, slots=True)
class LogTransform:
    """Gating-ML ``flog``: ``log10(x / T) / M + 1``; NaN for ``x <= 0`` (outside every gate).

    Parameters
    ----------
    t : float
        Top of scale (``T`` > 0).
    m : float
        Decades (``M`` > 0).
    """

    t: float = 262144.0
    m: float = 4.5

    def __post_init__(self) -> None:
        _positive("flog", T=self.t, M=self.m)

    def apply(self, x: npt.ArrayLike) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log10(_as_float(x) / self.t) / self.m + 1.0
        return np.where(np.isfinite(out), out, np.nan)

    def inverse(self, y: npt.ArrayLike) -> FloatArray:
        return self.t * np.power(10.0, (_as_float(y) - 1.0) * self.m)


@dataclass(frozen=True, slots=True)
class AsinhTransform:
    """Gating-ML ``fasinh`` (``T`` > 0, ``M`` > 0, ``0 <= A <= M``)."""

    t: float = 262144.0
    m: float = 4.5
    a: float = 0.0

    def __post_init__(self) -> None:
        _positive("fasinh", T=self.t, M=self.m)
        if not (0 <= self.a <= self.m):
            raise TransformError(f"fasinh: parameter A must be in [0, M={self.m}], got {self.a!r}.")

    def apply(self, x: npt.ArrayLike) -> FloatArray:
        pre = math.sinh(self.m * _LN10) / self.t
        return (np.arcsinh(_as_float(x) * pre) + self.a * _LN10) / ((self.m + self.a) * _LN10)

    def inverse(self, y: npt.ArrayLike) -> FloatArray:
        pre = math.sinh(self.m * _LN10) / self.t
        return np.sinh(_as_float(y) * (self.m + self.a) * _LN10 - self.a * _LN10) / pre


def _check_logicle_params(name: str, t: float, w: float, m: float, a: float) -> None:
    _positive(name, T=t, M=m)
    if not (0 <= w <= m / 2):
        raise TransformError(f"{name}: parameter W must be in [0, M/2 = {m / 2}], got {w!r}.")
    if not (-w <= a <= m - 2 * w):
        raise TransformError(f"{name}: parameter A must be in [-W, M - 2W] = [{-w}, {m - 2 * w}], got {a!r}.")


@dataclass(frozen=True, slots=True)
class LogicleTransform:
    """Logicle (Parks 2006; Gating-ML 2.0 ``logicle``), the root of ``B(y) - x`` with
    ``B(y) = a e^(b y) - c e^(-d y) - f``.

    Parameters
    ----------
    t : float
        Top of scale in data units (e.g. 262144).
    w : float
        Width of the linear-like region in decades, ``0 <= W <= M/2``.
    m : float
        Total decades at the top of scale.
    a : float
        Additional negative decades, ``-W <= A <= M - 2W``.
    """

    t: float = 262144.0
    w: float = 0.5
    m: float = 4.5
    a: float = 0.0

    def __post_init__(self) -> None:
        _check_logicle_params("logicle", self.t, self.w, self.m, self.a)

    def apply(self, x: npt.ArrayLike, *, fast: bool | None = None) -> FloatArray:
        """Logicle of ``x``; ``fast``: table-driven path (default: for arrays of >= 200,000 values)."""
        arr = _as_float(x)
        if fast if fast is not None else arr.size >= _fastlogicle.MIN_SIZE:
            return _fastlogicle.logicle(arr, self.t, self.w, self.m, self.a)
        out = np.array(arr, dtype=np.float64, copy=True).reshape(-1)
        return np.asarray(fu_transforms._logicle(out, self.t, self.m, self.w, self.a)).reshape(arr.shape)

    def inverse(self, y: npt.ArrayLike) -> FloatArray:
        arr = _as_float(y)
        out = np.array(arr, dtype=np.float64, copy=True).reshape(-1)
        return np.asarray(fu_transforms._logicle_inverse(out, self.t, self.m, self.w, self.a)).reshape(
            arr.shape
        )


@dataclass(frozen=True, slots=True)
class HyperlogTransform:
    """Hyperlog (Bagwell 2005; Gating-ML 2.0 ``hyperlog``), the root of ``EH(y) - x`` with
    ``EH(y) = a e^(b y) + c y - f``; parameters as :class:`LogicleTransform`."""

    t: float = 262144.0
    w: float = 0.5
    m: float = 4.5
    a: float = 0.0

    def __post_init__(self) -> None:
        _check_logicle_params("hyperlog", self.t, self.w, self.m, self.a)
        if self.w == 0:
            raise TransformError("hyperlog: parameter W must be > 0.")

    def apply(self, x: npt.ArrayLike, *, fast: bool | None = None) -> FloatArray:
        """Hyperlog of ``x``; ``fast``: table-driven path (default: for arrays of >= 200,000 values)."""
        arr = _as_float(x)
        if fast if fast is not None else arr.size >= _fastlogicle.MIN_SIZE:
            return _fastlogicle.hyperlog(arr, self.t, self.w, self.m, self.a)
        out = np.array(arr, dtype=np.float64, copy=True).reshape(-1)
        return np.asarray(fu_transforms._hyperlog(out, self.t, self.m, self.w, self.a)).reshape(arr.shape)

    def inverse(self, y: npt.ArrayLike) -> FloatArray:
        arr = _as_float(y)
        out = np.array(arr, dtype=np.float64, copy=True).reshape(-1)
        return np.asarray(fu_transforms._hyperlog_inverse(out, self.t, self.m, self.w, self.a)).reshape(
            arr.shape
        )


def _biex_negative_range(positive_range: float, width: float) -> float:
    """Solve ``2 ln(d / b) + w (b + d) = 0`` for ``d`` in (0, b] (FlowJo's biex width relation)."""
    if width == 0:
        return positive_range

    def f(d: float) -> float:
        return 2.0 * math.log(d / positive_range) + width * (positive_range + d)

    return float(brentq(f, 1e-300, positive_range, xtol=1e-15, rtol=1e-15, maxiter=500))


def flowjo_biex_table(
    positive: float, negative: float, width: float, max_value: float, channel_range: int = 4096
) -> FloatArray:
    """FlowJo's biex lookup table: data value of each display channel ``0..channel_range``.

    The biexponential ``v(j) = min * (e^(j/n * P) - s e^(-j/n * N) - k)`` is mirrored below FlowJo's
    zero channel; ``P = ln10 * decades`` and ``N`` solves the width relation. Matches FlowJo's exported
    table (``tr_biex_l256_w-7.943282_n1.000000_m4.418540_r262144.000029.csv``) to 1e-6 relative.
    """
    decades = positive
    w_decades = math.log10(-width)
    decades -= w_decades / 2
    extra = max(negative, 0.0) + w_decades / 2
    zero = min(int(extra * channel_range / (extra + decades)), channel_range // 2)
    if zero > 0:
        decades = extra * channel_range / zero
    w = w_decades / (2 * decades)
    p_range = _LN10 * decades
    minimum = max_value / math.exp(p_range)
    n_range = _biex_negative_range(p_range, w)
    n = channel_range + 1
    j = np.arange(n, dtype=np.float64)
    pos = np.exp(j / n * p_range)
    neg = np.exp(-j / n * n_range) * math.exp((p_range + n_range) * (w + extra / decades))
    shift = pos[zero] - neg[zero]
    values = np.empty(n, dtype=np.float64)
    values[zero:] = minimum * (pos[zero:] - neg[zero:] - shift)
    mirror = 2 * zero - np.arange(zero)
    values[:zero] = -minimum * (pos[mirror] - neg[mirror] - shift)
    return values


@dataclass(frozen=True, slots=True)
class FlowJoBiexTransform:
    """FlowJo's biexponential display transform, scaled to [0, 1].

    Parameters
    ----------
    negative : float
        Extra negative decades (FlowJo ``neg``), >= 0.
    width : float
        Width basis (FlowJo ``width``), < 0, e.g. -10 (= 1 decade of linear-like region).
    positive : float
        Positive decades (FlowJo ``pos``), e.g. 4.418539922.
    max_value : float
        Top of scale in data units (FlowJo ``maxRange``), e.g. 262144.
    channel_range : int
        Resolution of FlowJo's lookup table (4096).

    Notes
    -----
    FlowJo evaluates the transform by linear interpolation in its lookup table; so do we (the table is
    computed once per transform). Values beyond the table are extrapolated linearly from its end segments.
    """

    negative: float = 0.0
    width: float = -10.0
    positive: float = 4.418539922
    max_value: float = 262144.0
    channel_range: int = 4096
    _table: list[FloatArray] = field(default_factory=list, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not (self.width < 0):
            raise TransformError(f"FlowJo biex: width basis must be < 0 (e.g. -10), got {self.width!r}.")
        if self.negative < 0:
            raise TransformError(f"FlowJo biex: negative decades must be >= 0, got {self.negative!r}.")
        _positive("FlowJo biex", pos=self.positive, maxRange=self.max_value)
        if self.channel_range < 16:
            raise TransformError(f"FlowJo biex: channel range must be >= 16, got {self.channel_range!r}.")

    def table(self) -> FloatArray:
        """Data value at each display channel ``0..channel_range`` (computed once)."""
        if not self._table:
            values = flowjo_biex_table(
                self.positive, self.negative, self.width, self.max_value, self.channel_range
            )
            values.setflags(write=False)
            self._table.append(values)
        return self._table[0]

    def apply(self, x: npt.ArrayLike) -> FloatArray:
        values = self.table()
        arr = _as_float(x)
        channels = np.arange(values.size, dtype=np.float64)
        out = np.interp(arr, values, channels)
        lo, hi = arr < values[0], arr > values[-1]
        if lo.any():
            out[lo] = (arr[lo] - values[0]) / (values[1] - values[0])
        if hi.any():
            out[hi] = channels[-1] + (arr[hi] - values[-1]) / (values[-1] - values[-2])
        return out / self.channel_range

    def inverse(self, y: npt.ArrayLike) -> FloatArray:
        values = self.table()
        ch = _as_float(y) * self.channel_range
        channels = np.arange(values.size, dtype=np.float64)
        out = np.interp(ch, channels, values)
        lo, hi = ch < 0, ch > channels[-1]
        if np.any(lo):
            out[lo] = values[0] + ch[lo] * (values[1] - values[0])
        if np.any(hi):
            out[hi] = values[-1] + (ch[hi] - channels[-1]) * (values[-1] - values[-2])
        return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class RatioTransform:
    """Gating-ML ``fratio``: ``A (x - B) / (y - C)`` of two channels, a new dimension.

    Parameters
    ----------
    numerator, denominator : str
        Channel names (``$PnN``) of ``x`` and ``y``.
    a, b, c : float
        Scale and offsets.
    """

    numerator: str
    denominator: str
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0

    def apply_pair(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Ratio values of paired numerator and denominator values (NaN where ``y == C``)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.a * (_as_float(x) - self.b) / (_as_float(y) - self.c)
        return np.where(np.isfinite(out), out, np.nan)


Transform = (
    LinearTransform
    | LogTransform
    | AsinhTransform
    | LogicleTransform
    | HyperlogTransform
    | (FlowJoBiexTransform)
    | RatioTransform
)
