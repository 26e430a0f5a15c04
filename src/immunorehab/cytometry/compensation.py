"""Spillover matrices and compensation.

A spillover matrix ``S`` has one row per fluorochrome and one column per detector: ``S[i, j]`` is the
fraction of fluorochrome *i*'s signal seen in detector *j*. Observed detector values are
``x_obs = x_true @ S``, so compensation is ``x_true = x_obs @ S^-1`` (the same algebra as
``flowutils.compensate.compensate``, which solves ``S.T y = x.T``; for square ``S`` the two agree to
rounding). Non-square matrices (spectral unmixing, more detectors than fluorochromes) are solved by
ordinary least squares, as ``flowutils.compensate.compensate_spectral_ols`` does.

Sources: ``$SPILLOVER`` / ``$SPILL`` / ``SPILL`` FCS keywords (:meth:`Spillover.from_text`), CSV files
(:meth:`Spillover.from_csv`), Gating-ML ``spectrumMatrix`` and FlowJo workspaces (their readers build a
:class:`Spillover` directly).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from immunorehab.errors import CompensationError

__all__ = ["Spillover", "compensate", "compensation_operator", "spillover_from_metadata"]

FloatArray = npt.NDArray[np.float64]

_SPILL_KEYWORDS = ("spillover", "spill", "$spillover", "$spill")


@dataclass(frozen=True, slots=True, eq=False)
class Spillover:
    """A spillover matrix with its detector (and fluorochrome) names.

    Parameters
    ----------
    detectors : tuple of str
        Detector channel names (``$PnN``), one per matrix column.
    matrix : ndarray, shape (n_fluorochromes, n_detectors)
        Spillover fractions; rows are fluorochromes, columns detectors. Stored read-only.
    fluorochromes : tuple of str, optional
        Names of the compensated values, one per row. Defaults to ``detectors`` (conventional
        square compensation, where the compensated value keeps the detector's name).
    id : str
        Identifier (Gating-ML ``transforms:id``; ``"FCS"`` for the file's own matrix).
    """

    detectors: tuple[str, ...]
    matrix: FloatArray
    fluorochromes: tuple[str, ...] = ()
    id: str = "spill"
    _inverse: list[FloatArray] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        m = np.array(self.matrix, dtype=np.float64, copy=True)
        dets = tuple(str(d) for d in self.detectors)
        fluors = tuple(str(f) for f in self.fluorochromes) or dets
        if m.ndim != 2 or m.shape[1] != len(dets) or m.shape[0] != len(fluors):
            raise CompensationError(
                f"Spillover {self.id!r}: matrix shape {m.shape} does not match {len(fluors)} fluorochromes "
                f"x {len(dets)} detectors {dets}."
            )
        if m.shape[0] > m.shape[1]:
            raise CompensationError(
                f"Spillover {self.id!r}: {m.shape[0]} fluorochromes but only {m.shape[1]} detectors; "
                "a spillover matrix needs at least as many detectors as fluorochromes."
            )
        if not np.all(np.isfinite(m)):
            raise CompensationError(f"Spillover {self.id!r}: matrix contains NaN or infinite values.")
        if len(set(dets)) != len(dets):
            raise CompensationError(f"Spillover {self.id!r}: duplicate detector names in {dets}.")
        if m.shape[0] == m.shape[1] and abs(np.linalg.det(m)) < 1e-12:
            raise CompensationError(f"Spillover {self.id!r}: the matrix is singular and cannot be inverted.")
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)
        object.__setattr__(self, "detectors", dets)
        object.__setattr__(self, "fluorochromes", fluors)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Spillover):
            return NotImplemented
        return (
            self.detectors == other.detectors
            and self.fluorochromes == other.fluorochromes
            and bool(np.array_equal(self.matrix, other.matrix))
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shape = "x".join(str(n) for n in self.matrix.shape)
        return f"Spillover(id={self.id!r}, {shape}, detectors={self.detectors})"

    @property
    def is_square(self) -> bool:
        """True for conventional compensation (one fluorochrome per detector)."""
        return bool(self.matrix.shape[0] == self.matrix.shape[1])

    def fluorochrome_for(self, name: str) -> str | None:
        """The compensated value a dimension named ``name`` refers to, or None when not in the matrix.

        A fluorochrome name refers to itself (Gating-ML); for a square matrix a detector name refers to the
        fluorochrome in the same position (FlowJo and FlowKit name compensated values by their detector).
        """
        if name in self.fluorochromes:
            return name
        if self.is_square and name in self.detectors:
            return self.fluorochromes[self.detectors.index(name)]
        return None

    def unmixing(self) -> FloatArray:
        """Matrix ``U`` with ``x_true = x_obs @ U`` (``S^-1``, or the least-squares pseudo-inverse)."""
        if not self._inverse:
            u = np.asarray(
                np.linalg.inv(self.matrix) if self.is_square else np.linalg.pinv(self.matrix),
                dtype=np.float64,
            )
            u.setflags(write=False)
            self._inverse.append(u)
        return self._inverse[0]

    def with_id(self, new_id: str) -> Spillover:
        """The same matrix under another id."""
        return Spillover(self.detectors, self.matrix, self.fluorochromes, id=new_id)

    # -- readers ------------------------------------------------------------------------------

    @classmethod
    def from_text(cls, value: str, *, source: str = "$SPILLOVER", id: str = "FCS") -> Spillover:
        """Parse an FCS ``$SPILLOVER`` value: ``n,det_1,...,det_n,s_11,s_12,...,s_nn`` (row major).

        Raises
        ------
        CompensationError
            Wrong number of values, non-numeric values; the message names ``source``.
        """
        parts = [p.strip() for p in value.strip().split(",")]
        try:
            n = int(float(parts[0]))
        except ValueError:
            raise CompensationError(
                f"{source}: first value must be the number of detectors, got {parts[0]!r}."
            ) from None
        if n < 1 or len(parts) != 1 + n + n * n:
            raise CompensationError(
                f"{source}: declares {n} detectors, so needs {1 + n + n * n} comma-separated values; "
                f"found {len(parts)}."
            )
        names = tuple(parts[1 : n + 1])
        try:
            values = np.array([float(v) for v in parts[n + 1 :]], dtype=np.float64).reshape(n, n)
        except ValueError as exc:
            raise CompensationError(f"{source}: matrix values must be numbers ({exc}).") from None
        return cls(names, values, id=id)

    @classmethod
    def from_csv(cls, path: str | Path, *, id: str | None = None) -> Spillover:
        """Read a spillover matrix from CSV (or tab-separated) text.

        Accepted layouts: a header row of detector names (optionally starting with ``#``) followed by one
        row of numbers per fluorochrome (``comp_complete_example.csv``, FlowJo/FlowUtils exports); or the
        same with a leading column of fluorochrome names.

        Raises
        ------
        CompensationError
            Missing rows, ragged rows, non-numeric cells; the message names file, row and value.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CompensationError(f"{p}: cannot read the compensation matrix ({exc}).") from None
        return cls.from_csv_text(text, source=str(p), id=id or p.stem)

    @classmethod
    def from_csv_text(cls, text: str, *, source: str = "matrix", id: str = "csv") -> Spillover:
        """Parse CSV/TSV matrix text (see :meth:`from_csv`)."""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise CompensationError(f"{source}: the file is empty; expected a header row of detector names.")
        delim = "\t" if "\t" in lines[0] and "," not in lines[0] else ","
        rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=delim)]
        header = rows[0]
        if header and header[0].startswith("#"):
            header[0] = header[0].lstrip("#").strip()
        body = rows[1:]
        labelled = bool(body) and not _is_number(body[0][0]) and len(body[0]) == len(header) + 1
        if labelled or (header and header[0] == "" and body and not _is_number(body[0][0])):
            header = [h for h in header if h != ""]
        n_det = len(header)
        fluors: list[str] = []
        values: list[list[float]] = []
        for k, row in enumerate(body, start=2):
            cells = row
            if cells and not _is_number(cells[0]):
                fluors.append(cells[0])
                cells = cells[1:]
            if len(cells) != n_det:
                raise CompensationError(
                    f"{source}, row {k}: {len(cells)} values, expected {n_det} (one per header detector)."
                )
            try:
                values.append([float(c) for c in cells])
            except ValueError:
                bad = next(c for c in cells if not _is_number(c))
                raise CompensationError(f"{source}, row {k}: value {bad!r} is not a number.") from None
        if len(values) != n_det and not fluors:
            raise CompensationError(
                f"{source}: {len(values)} matrix rows for {n_det} detectors; a spillover matrix needs a row "
                "per detector (is a row missing?)."
            )
        if fluors and len(fluors) != len(values):
            raise CompensationError(f"{source}: some rows are labelled and some are not.")
        return cls(tuple(header), np.array(values, dtype=np.float64), tuple(fluors), id=id)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def spillover_from_metadata(metadata: Mapping[str, str], *, source: str) -> Spillover | None:
    """The spillover matrix in ``$SPILLOVER`` / ``$SPILL`` / ``SPILL`` keywords, or None when absent."""
    for key in _SPILL_KEYWORDS:
        value = metadata.get(key)
        if value is not None and value.strip():
            return Spillover.from_text(value, source=f"{source}: keyword {key.upper()}", id="FCS")
    return None


def compensation_operator(channels: Sequence[str], spillover: Spillover) -> tuple[list[int], FloatArray]:
    """Column indices of the detectors in ``channels`` and the unmixing matrix.

    Raises
    ------
    CompensationError
        When a detector of the matrix is not among ``channels`` (the message lists both).
    """
    index = {c: i for i, c in enumerate(channels)}
    missing = [d for d in spillover.detectors if d not in index]
    if missing:
        raise CompensationError(
            f"Spillover {spillover.id!r}: detectors {missing} are not channels of the data "
            f"({', '.join(channels)}); is this the right matrix for the file?"
        )
    return [index[d] for d in spillover.detectors], spillover.unmixing()


def compensate(events: npt.ArrayLike, channels: Sequence[str], spillover: Spillover) -> FloatArray:
    """Compensate events: detector columns are replaced by compensated fluorochrome values.

    Parameters
    ----------
    events : array_like, shape (n_events, n_channels)
        Channel-to-scale event values (not modified).
    channels : sequence of str
        Column names of ``events``; must include every detector of ``spillover``.
    spillover : Spillover
        Square matrix (conventional) or non-square (spectral, solved by least squares).

    Returns
    -------
    ndarray, shape (n_events, n_channels), float64
        A new array: the detector columns hold compensated values (for a square matrix the column of
        detector *j* holds fluorochrome *j*); all other columns are copied unchanged. For a non-square
        matrix the first ``n_fluorochromes`` detector columns hold the unmixed values and the remaining
        detector columns are copied unchanged (as ``flowutils.compensate.compensate_spectral_ols``).

    Examples
    --------
    >>> s = Spillover(("A", "B"), np.array([[1.0, 0.1], [0.0, 1.0]]))
    >>> compensate(np.array([[10.0, 2.0]]), ["A", "B"], s)
    array([[10.,  1.]])
    """
    data = np.array(events, dtype=np.float64, copy=True)
    if data.ndim != 2 or data.shape[1] != len(channels):
        raise CompensationError(f"events have shape {data.shape}; expected (n_events, {len(channels)}).")
    cols, unmix = compensation_operator(channels, spillover)
    comp = data[:, cols] @ unmix
    data[:, cols[: comp.shape[1]]] = comp
    return data
