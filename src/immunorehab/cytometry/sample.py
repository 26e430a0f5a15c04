"""One FCS data set in memory: raw DATA values, channel-to-scale values and metadata.

A :class:`Sample` keeps the three kinds of event values apart, as the issue asks:

* ``raw`` - the DATA segment exactly as stored (integers bit-masked to ``$PnR``), float64;
* ``scaled`` - Gating-ML 2.0 "channel-to-scale": ``$PnE`` log amplification undone
  (``10 ** (f1 * x / PnR) * f2``), linear ``$PnG`` gain divided out, ``$TIMESTEP`` applied to the time
  channel (FlowIO's pre-processing, which the Gating-ML compliance truth uses);
* compensated and transformed values are never stored on the sample: the gating engine derives them
  (see :mod:`immunorehab.cytometry.engine`).

Samples are immutable: the event arrays are read-only views, so nothing downstream can alter them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from immunorehab.errors import CytometryError

from .compensation import Spillover, spillover_from_metadata

__all__ = ["Sample", "FloatArray"]

FloatArray = npt.NDArray[np.float64]


def _readonly(a: FloatArray) -> FloatArray:
    a.setflags(write=False)
    return a


def _log_decades(value: str | None) -> tuple[float, float]:
    """Parse ``$PnE`` ("f1,f2"); (0, 0) when absent. Raises ValueError when unparseable."""
    if value is None or not value.strip():
        return 0.0, 0.0
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2:
        raise ValueError(f"expected 'f1,f2', got {value!r}")
    decades, log0 = float(parts[0]), float(parts[1])
    if decades > 0 and log0 == 0:
        log0 = 1.0  # FCS 3.1: "0" for f2 with f1 > 0 is read as 1
    return decades, log0


class Sample:
    """Events of one FCS data set with names, metadata and provenance.

    Use :func:`immunorehab.cytometry.read_fcs` to read a file, or :meth:`from_array` for synthetic data.

    Attributes
    ----------
    name : str
        File stem (or ``$FIL``), or the name given to :meth:`from_array`.
    path : pathlib.Path or None
        The file read, None for synthetic samples.
    sha256 : str
        Hex SHA-256 of the file bytes (of the event bytes for synthetic samples): provenance.
    version : str
        FCS version, ``"2.0"``, ``"3.0"`` or ``"3.1"``.
    channels : tuple of str
        ``$PnN`` names in file order.
    markers : tuple of str
        ``$PnS`` names in file order, ``""`` where absent.
    metadata : Mapping[str, str]
        Every TEXT keyword; keys lower-case without the leading ``$`` (``"p1n"``, ``"spillover"``).
    n_events : int
        Number of events.
    raw : ndarray, shape (n_events, n_channels), float64, read-only
        DATA values as stored.
    scaled : ndarray, same shape, read-only
        Channel-to-scale values (computed on first use).
    spillover : Spillover or None
        Spillover matrix from ``$SPILLOVER`` / ``$SPILL`` / ``SPILL``.
    """

    __slots__ = (
        "name",
        "path",
        "_sha256",
        "version",
        "channels",
        "markers",
        "metadata",
        "spillover",
        "dataset",
        "_raw",
        "_scaled",
    )

    def __init__(
        self,
        *,
        name: str,
        raw: FloatArray,
        channels: Sequence[str],
        markers: Sequence[str],
        metadata: Mapping[str, str],
        version: str,
        sha256: str | Callable[[], str],
        path: Path | None = None,
        dataset: int = 0,
        spillover: Spillover | None = None,
    ) -> None:
        if raw.ndim != 2 or raw.shape[1] != len(channels):
            raise CytometryError(
                f"Sample {name!r}: events have shape {raw.shape}, expected (n_events, {len(channels)}) "
                f"for channels {tuple(channels)}."
            )
        if len(markers) != len(channels):
            raise CytometryError(f"Sample {name!r}: {len(markers)} markers for {len(channels)} channels.")
        self.name = name
        self.path = path
        self._sha256 = sha256
        self.version = version
        self.channels: tuple[str, ...] = tuple(channels)
        self.markers: tuple[str, ...] = tuple(markers)
        self.metadata: Mapping[str, str] = MappingProxyType(dict(metadata))
        self.dataset = dataset
        self.spillover = spillover
        self._raw = _readonly(raw)
        self._scaled: FloatArray | None = None

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_array(
        cls,
        events: npt.ArrayLike,
        channels: Sequence[str],
        *,
        markers: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        name: str = "synthetic",
        spillover: Spillover | None = None,
    ) -> Sample:
        """Build a sample from an event matrix (already on the channel scale).

        Parameters
        ----------
        events : array_like, shape (n_events, n_channels)
            Event values; copied into a read-only float64 array.
        channels : sequence of str
            Channel (``$PnN``) names, one per column, unique.
        markers : sequence of str, optional
            Marker (``$PnS``) names; ``""`` for each channel when omitted.
        metadata : Mapping[str, str], optional
            TEXT-like keywords (lower-case keys without ``$``). A ``spillover`` keyword is parsed.
        name : str
            Sample name.
        spillover : Spillover, optional
            Spillover matrix; overrides one found in ``metadata``.

        Returns
        -------
        Sample
            ``raw`` and ``scaled`` are the same values (no gain or log amplification).
        """
        arr = np.array(events, dtype=np.float64, copy=True)
        if arr.ndim != 2:
            raise CytometryError(
                f"Sample {name!r}: events must be 2-D (n_events, n_channels), got {arr.ndim}-D."
            )
        chans = tuple(str(c) for c in channels)
        if len(set(chans)) != len(chans):
            raise CytometryError(f"Sample {name!r}: channel names must be unique, got {chans}.")
        meta = {str(k).lower().lstrip("$"): str(v) for k, v in (metadata or {}).items()}
        spill = spillover if spillover is not None else spillover_from_metadata(meta, source=name)
        digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
        sample = cls(
            name=name,
            raw=arr,
            channels=chans,
            markers=tuple(markers) if markers is not None else ("",) * len(chans),
            metadata=meta,
            version="3.1",
            sha256=digest,
            spillover=spill,
        )
        sample._scaled = sample._raw
        return sample

    # -- values -------------------------------------------------------------------------------

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the file bytes (computed in the background for large files)."""
        if not isinstance(self._sha256, str):
            self._sha256 = self._sha256()
        return self._sha256

    @property
    def n_events(self) -> int:
        """Number of events."""
        return int(self._raw.shape[0])

    @property
    def raw(self) -> FloatArray:
        """DATA values as stored, shape (n_events, n_channels), read-only."""
        return self._raw

    @property
    def scaled(self) -> FloatArray:
        """Channel-to-scale values (Gating-ML 2.0 section 4), shape (n_events, n_channels), read-only."""
        if self._scaled is None:
            self._scaled = self._compute_scaled()
        return self._scaled

    def channel_index(self, channel: str) -> int:
        """Column index of a channel, matched on ``$PnN`` (then on ``$PnS`` when unambiguous).

        Raises
        ------
        CytometryError
            When the channel is unknown or ambiguous; the message lists the channels present.
        """
        hits = [i for i, c in enumerate(self.channels) if c == channel]
        if not hits:
            hits = [i for i, m in enumerate(self.markers) if m and m == channel]
        if len(hits) == 1:
            return hits[0]
        what = "is ambiguous (duplicate names)" if hits else "is not in the file"
        raise CytometryError(
            f"Sample {self.name!r}: channel {channel!r} {what}; channels are {', '.join(self.channels)}."
        )

    def scaled_column(self, index: int) -> FloatArray:
        """Channel-to-scale values of one column (computed without building the whole matrix)."""
        if self._scaled is not None:
            return self._scaled[:, index]
        factor = self._column_scaling(index)
        if factor is None:
            return self._raw[:, index]
        return _readonly(self._apply_scaling(self._raw[:, index], factor))

    def column_is_unscaled(self, index: int) -> bool:
        """True when the channel-to-scale values of a column equal its raw values."""
        return self._column_scaling(index) is None

    def _column_scaling(self, index: int) -> tuple[float, float, float, float, float] | None:
        """(decades, log0, range, gain, timestep) of one column, or None when scaled == raw.

        Log amplification ``10 ** (f1 * x / PnR) * f2`` (FCS 3.1, Gating-ML 2.0 section 4); the gain
        ``$PnG`` divides linear channels only; the time channel is multiplied by ``$TIMESTEP`` (never by a
        gain), as FlowIO does.
        """
        n = index + 1
        meta = self.metadata
        try:
            decades, log0 = _log_decades(meta.get(f"p{n}e"))
        except ValueError:
            decades, log0 = 0.0, 0.0
        rng = _float_or_none(meta.get(f"p{n}r")) or 0.0
        gain, step = 1.0, 1.0
        if self.channels[index].lower() == "time":
            step = _float_or_none(meta.get("timestep")) or 1.0
        elif decades <= 0:
            gain = _float_or_none(meta.get(f"p{n}g")) or 1.0
        if (decades <= 0 or rng <= 0) and gain == 1.0 and step == 1.0:
            return None
        return decades, log0, rng, gain, step

    @staticmethod
    def _apply_scaling(col: FloatArray, factor: tuple[float, float, float, float, float]) -> FloatArray:
        decades, log0, rng, gain, step = factor
        out = np.array(col, dtype=np.float64)
        if decades > 0 and rng > 0:
            out = np.power(10.0, decades * out / rng) * log0
        if gain != 1.0:
            out /= gain
        if step != 1.0:
            out *= step
        return out

    def _compute_scaled(self) -> FloatArray:
        factors = [self._column_scaling(i) for i in range(len(self.channels))]
        if all(f is None for f in factors):
            return self._raw
        out = np.array(self._raw, dtype=np.float64)
        for i, f in enumerate(factors):
            if f is not None:
                out[:, i] = self._apply_scaling(out[:, i], f)
        return _readonly(out)

    def __repr__(self) -> str:
        return f"Sample({self.name!r}, {self.n_events} events x {len(self.channels)} channels)"

    def __reduce__(self) -> tuple[Callable[..., Sample], tuple[dict[str, object]]]:
        """Picklable (worker processes): the digest is resolved, the arrays travel as they are."""
        state: dict[str, object] = {
            "name": self.name,
            "raw": self._raw,
            "channels": self.channels,
            "markers": self.markers,
            "metadata": dict(self.metadata),
            "version": self.version,
            "sha256": self.sha256,
            "path": self.path,
            "dataset": self.dataset,
            "spillover": self.spillover,
        }
        return (_restore, (state,))


def _restore(state: dict[str, object]) -> Sample:
    raw = np.array(state.pop("raw"), dtype=np.float64)
    return Sample(raw=raw, **state)  # type: ignore[arg-type]


def _float_or_none(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None
