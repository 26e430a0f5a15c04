"""Density maths for automatic gate placement: valleys, scatter clusters, singlet bands, stable flow.

Pure functions on numpy arrays of values that are already compensated and transformed
(the scale the gates live on). Each returns where the gate should go *and* whether the
data supported a decision; when it did not (no clear valley, no closed cluster contour),
the caller keeps the template position and raises a QC flag.

- :func:`find_valley`: the threshold between a negative and a positive mode of a marker
  (smoothed histogram, the density minimum between two modes that each hold enough events).
- :func:`cluster_polygon`: a density contour around the cluster the template polygon
  points at (lymphocytes on FSC-A x SSC-A).
- :func:`singlet_band`: the band of FSC-A/FSC-H ratios of single cells (doublets have a
  larger area for their height).
- :func:`stable_time_window`: the part of the run with a steady event rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter, gaussian_filter1d

__all__ = [
    "ClusterPolygon",
    "SingletBand",
    "TimeWindow",
    "Valley",
    "cluster_polygon",
    "find_valley",
    "singlet_band",
    "stable_time_window",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Valley:
    """A threshold between two modes of a 1-D distribution.

    ``clear`` is False when no valley qualified; ``threshold`` is then the template
    position passed as ``near``. ``depth`` is the density at the valley over the smaller
    mode's density (0: empty gap, 1: no dip). ``reason`` says why, in words.
    """

    threshold: float
    clear: bool
    negative_mode: float | None
    positive_mode: float | None
    depth: float
    n_events: int
    reason: str


def _bandwidth(n: int, span: float) -> float:
    # 1.5% of the range for large samples, wider for small ones (n^-1/5, as Silverman's rule)
    return float(max(0.015, 0.06 * n ** (-0.2)) * span)


def _local_maxima(density: FloatArray) -> npt.NDArray[np.intp]:
    """Indices of local maxima: above the left neighbour, not below the right (ends padded with 0)."""
    padded = np.concatenate([[0.0], density, [0.0]])
    middle = padded[1:-1]
    return np.flatnonzero((middle > padded[:-2]) & (middle >= padded[2:]))


def _basin_masses(density: FloatArray, peaks: npt.NDArray[np.intp]) -> list[float]:
    """Share of the density in each peak's basin (split at the minima between peaks)."""
    bounds = [0]
    for left, right in zip(peaks[:-1], peaks[1:], strict=True):
        bounds.append(int(left + np.argmin(density[left : right + 1])))
    bounds.append(density.size)
    total = float(density.sum()) or 1.0
    return [float(density[a:b].sum()) / total for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _valley_position(density: FloatArray, centers: FloatArray, left: int, right: int) -> tuple[float, float]:
    """(position, density) of the valley between bins ``left`` and ``right`` (middle of a flat bottom)."""
    segment = density[left : right + 1]
    low = float(segment.min())
    tolerance = low + 0.02 * (float(segment.max()) - low)
    flat = np.flatnonzero(segment <= tolerance)
    # the contiguous run of near-minimal bins that contains the minimum
    at = int(np.argmin(segment))
    runs = np.split(flat, np.flatnonzero(np.diff(flat) > 1) + 1)
    run = next(r for r in runs if at in r)
    return float(centers[left + int(round((run[0] + run[-1]) / 2))]), low


def _search_range(x: FloatArray, near: float) -> tuple[float, float]:
    lo, hi = (float(v) for v in np.percentile(x, [0.1, 99.9]))
    lo, hi = min(lo, near), max(hi, near)
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


def find_valley(
    values: npt.ArrayLike,
    *,
    near: float,
    lo: float | None = None,
    hi: float | None = None,
    bins: int = 256,
    max_depth: float = 0.5,
    max_shift: float = 0.25,
    min_mode_fraction: float = 0.005,
    min_mode_events: int = 15,
    min_events: int = 50,
) -> Valley:
    """The threshold between the negative and positive modes of ``values`` closest to ``near``.

    Parameters
    ----------
    values : array_like
        Marker values of the parent population on the gate's (transformed) scale.
    near : float
        The template position; among qualifying valleys the closest one wins, and the
        template is kept when none qualifies.
    lo, hi : float, optional
        The range searched; default the 0.1-99.9 percentile range (and ``near``) plus 5%.
        Values outside are clipped into the end bins.
    bins : int
        Histogram bins over ``[lo, hi]``; the histogram is smoothed with a Gaussian of
        1.5% of the range (wider below ~10^4 events: ``0.06 n^-1/5``).
    max_depth : float
        A valley qualifies when its density is at most this fraction of the smaller mode.
    max_shift : float
        A valley farther than this from ``near`` (in scale units; 0.25 is a quarter of a
        logicle scale) does not qualify: it would split other populations.
    min_mode_fraction, min_mode_events : float, int
        Each of the two modes must hold this share of the events and this many events.
    min_events : int
        Fewer finite values than this: no decision.

    Returns
    -------
    Valley
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n < min_events:
        return Valley(near, False, None, None, 1.0, n, f"only {n} events (at least {min_events} needed)")
    auto_lo, auto_hi = _search_range(x, near)
    lo = auto_lo if lo is None else lo
    hi = auto_hi if hi is None else hi
    counts, edges = np.histogram(np.clip(x, lo, hi), bins=bins, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2
    sigma = _bandwidth(n, hi - lo) / (edges[1] - edges[0])
    density = gaussian_filter1d(counts.astype(np.float64), sigma, mode="constant")
    peaks = _local_maxima(density)
    masses = _basin_masses(density, peaks)
    needed = max(min_mode_fraction, min_mode_events / n)
    modes = [int(p) for p, m in zip(peaks, masses, strict=True) if m >= needed]
    best: Valley | None = None
    for left, right in zip(modes[:-1], modes[1:], strict=True):
        position, low = _valley_position(density, centers, left, right)
        depth = low / max(min(density[left], density[right]), 1e-12)
        if depth > max_depth or abs(position - near) > max_shift:
            continue
        candidate = Valley(
            position, True, float(centers[left]), float(centers[right]), float(depth), n, "valley"
        )
        if best is None or abs(position - near) < abs(best.threshold - near):
            best = candidate
    if best is not None:
        return best
    if len(modes) < 2:
        reason = "one mode only (no separate negative and positive populations)"
    else:
        reason = (
            f"no valley deeper than {max_depth:.0%} of the smaller mode within {max_shift} of the template"
        )
    return Valley(near, False, None, None, 1.0, n, reason)


@dataclass(frozen=True, slots=True)
class ClusterPolygon:
    """A density contour around one cluster; ``vertices`` is None when not ``clear``."""

    vertices: tuple[tuple[float, float], ...] | None
    clear: bool
    peak: tuple[float, float] | None
    reason: str


def _window(template: FloatArray, expand: float) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = template.min(axis=0), template.max(axis=0)
    dx, dy = (x1 - x0) * expand, (y1 - y0) * expand
    return x0 - dx, x1 + dx, max(y0 - dy, min(0.0, y0)), y1 + dy


def _inside(vertices: FloatArray, points: FloatArray) -> npt.NDArray[np.bool_]:
    from flowutils.gating import points_in_polygon

    return np.asarray(points_in_polygon(vertices, points), dtype=bool)


def _simplify(line: FloatArray, max_vertices: int) -> tuple[tuple[float, float], ...]:
    if line.shape[0] > 1 and np.allclose(line[0], line[-1]):
        line = line[:-1]
    step = max(1, math.ceil(line.shape[0] / max_vertices))
    return tuple((round(float(a), 5), round(float(b), 5)) for a, b in line[::step])


def _local_peaks(density: FloatArray, floor: float) -> npt.NDArray[np.bool_]:
    from scipy.ndimage import maximum_filter

    peaks: npt.NDArray[np.bool_] = (density == maximum_filter(density, size=5)) & (density > floor)
    return peaks


def cluster_polygon(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    template: Sequence[tuple[float, float]],
    levels: Sequence[float] = (0.01, 0.02, 0.05, 0.1),
    bins: int = 128,
    smooth_bins: float = 2.0,
    expand: float = 0.6,
    min_fraction: float = 0.02,
    other_peak: float = 0.15,
    max_vertices: int = 40,
) -> ClusterPolygon:
    """A density contour around the densest point inside ``template``, at the most generous usable level.

    The density is a smoothed 2-D histogram over the template's bounding box grown by
    ``expand`` on each side. For a 2-D normal cluster the contour at level ``f`` x peak holds
    ``1 - f`` of the cluster (99% at the first level). A level is used when its contour
    around the peak is closed and holds no second peak higher than ``other_peak`` x the
    main one (a neighbouring population merged in); otherwise the next, tighter level is
    tried. Not clear (keep the template) when the template holds no peak, no level gives
    a usable contour, or the cluster holds less than ``min_fraction`` of the nearby events.
    """
    import contourpy

    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    tpl = np.asarray(template, dtype=np.float64)
    x0, x1, y0, y1 = _window(tpl, expand)
    ok = np.isfinite(xs) & np.isfinite(ys)
    counts, xe, ye = np.histogram2d(xs[ok], ys[ok], bins=bins, range=((x0, x1), (y0, y1)))
    n_window = float(counts.sum())
    if n_window < 50:
        return ClusterPolygon(None, False, None, f"only {int(n_window)} events near the template")
    density = gaussian_filter(counts, smooth_bins, mode="constant")
    xc, yc = (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2
    gx, gy = np.meshgrid(xc, yc, indexing="ij")
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    within = _inside(tpl, grid).reshape(density.shape)
    if not within.any() or density[within].max() <= 0:
        return ClusterPolygon(None, False, None, "no events inside the template polygon")
    i, j = np.unravel_index(int(np.argmax(np.where(within, density, -1.0))), density.shape)
    top = float(density[i, j])
    peak = (float(xc[i]), float(yc[j]))
    others = _local_peaks(density, other_peak * top)
    others[i, j] = False
    generator = contourpy.contour_generator(xc, yc, density.T)
    for level in levels:
        for line in generator.lines(level * top):
            arr = np.asarray(line, dtype=np.float64)
            if arr.shape[0] < 4 or not np.allclose(arr[0], arr[-1]) or not _inside(arr, np.array([peak]))[0]:
                continue
            enclosed = _inside(arr, grid).reshape(counts.shape)
            if (enclosed & others).any():
                break  # a neighbouring population merged in: try a tighter level
            share = float(counts[enclosed].sum()) / n_window
            if share < min_fraction:
                return ClusterPolygon(
                    None, False, peak, f"the cluster holds only {share:.1%} of nearby events"
                )
            return ClusterPolygon(
                _simplify(arr, max_vertices), True, peak, f"density contour at {level:g} x peak"
            )
    return ClusterPolygon(
        None, False, peak, "no closed contour isolates the cluster (it merges or runs off scale)"
    )


@dataclass(frozen=True, slots=True)
class SingletBand:
    """FSC-A/FSC-H ratio limits of single cells."""

    low: float
    high: float
    mode: float
    clear: bool
    reason: str


def singlet_band(
    area: npt.ArrayLike,
    height: npt.ArrayLike,
    *,
    template: tuple[float, float],
    width_sd: float = 5.0,
    min_events: int = 50,
) -> SingletBand:
    """The ratio band ``low <= area/height <= high`` holding single cells.

    The singlet mode of ``log(area/height)`` is found on a smoothed histogram; its spread
    is estimated from the half below the mode (which doublets do not reach), and the band
    is ``mode +- width_sd`` robust SDs, cut at the valley towards the doublets when one
    exists. ``template`` (low, high) is kept when there are too few events.
    """
    a, h = np.asarray(area, dtype=np.float64), np.asarray(height, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(h) & (a > 0) & (h > 0)
    if int(ok.sum()) < min_events:
        return SingletBand(template[0], template[1], math.nan, False, f"only {int(ok.sum())} events")
    r = np.log(a[ok] / h[ok])
    lo, hi = float(np.percentile(r, 0.5)) - 0.1, float(np.percentile(r, 99.5)) + 0.1
    counts, edges = np.histogram(r, bins=256, range=(lo, hi))
    density = gaussian_filter1d(counts.astype(np.float64), 2.0)
    centers = (edges[:-1] + edges[1:]) / 2
    k = int(np.argmax(density))
    mode = float(centers[k])
    below = r[r <= mode]
    sd = float(np.median(mode - below)) * 1.4826 if below.size >= 10 else math.nan
    if not math.isfinite(sd) or sd <= 0:
        return SingletBand(
            template[0], template[1], math.exp(mode), False, "no spread below the singlet mode"
        )
    upper = mode + width_sd * sd
    valley = find_valley(r, near=mode + 3 * sd, lo=lo, hi=hi, max_shift=math.inf)
    if valley.clear and mode < valley.threshold < upper:
        upper = valley.threshold
    return SingletBand(math.exp(mode - width_sd * sd), math.exp(upper), math.exp(mode), True, "singlet mode")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The stable stretch of a run: ``start <= Time < end`` (None: keep that end open).

    ``unstable_fraction`` is the share of events in bins whose rate departs from the
    median (inside or outside the window); ``rate_cv`` the coefficient of variation of
    the per-bin rate.
    """

    start: float | None
    end: float | None
    unstable_fraction: float
    rate_cv: float
    bins: int


def stable_time_window(
    time: npt.ArrayLike, *, bins: int = 100, tolerance: float = 0.5, noise_sd: float = 4.0
) -> TimeWindow:
    """Trim unstable flow at the start and end of a run from the Time channel.

    The run is cut into ``bins`` equal time bins; a bin is unstable when its event count
    departs from the median count by more than ``tolerance`` x median *and* by more than
    ``noise_sd`` Poisson SDs. Leading and trailing unstable bins are cut off; unstable bins
    in the middle stay in (a rectangle gate keeps one stretch) but count towards
    ``unstable_fraction``, which the caller turns into a QC flag.
    """
    t = np.asarray(time, dtype=np.float64)
    t = t[np.isfinite(t)]
    if t.size < 10 * bins or float(t.max()) <= float(t.min()):
        return TimeWindow(None, None, 0.0, math.nan, 0)
    counts, edges = np.histogram(t, bins=bins, range=(float(t.min()), float(t.max())))
    median = float(np.median(counts))
    allowed = max(tolerance * median, noise_sd * math.sqrt(max(median, 1.0)))
    bad = np.abs(counts - median) > allowed
    good = np.flatnonzero(~bad)
    if good.size == 0:
        return TimeWindow(None, None, 1.0, float(counts.std() / max(counts.mean(), 1e-12)), bins)
    first, last = int(good[0]), int(good[-1])
    start = float(edges[first]) if first > 0 else None
    end = float(edges[last + 1]) if last < bins - 1 else None
    unstable = float(counts[bad].sum()) / float(counts.sum())
    return TimeWindow(start, end, unstable, float(counts.std() / max(counts.mean(), 1e-12)), bins)
