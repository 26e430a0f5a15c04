"""Input checks shared by the analysis functions (one clear message per problem)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from immunorehab.errors import AnalysisDataError

__all__ = [
    "design_columns",
    "require_columns",
    "require_numeric",
    "require_positive",
    "require_probability",
]


def require_columns(data: pd.DataFrame, columns: Iterable[str], *, context: str) -> None:
    """Raise :class:`AnalysisDataError` naming every missing column and the columns present."""
    if not isinstance(data, pd.DataFrame):
        raise AnalysisDataError(f"{context}: data must be a pandas DataFrame, got {type(data).__name__}.")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        present = ", ".join(map(str, data.columns))
        raise AnalysisDataError(
            f"{context}: column(s) {', '.join(map(repr, missing))} not found in the data; "
            f"columns present: {present}."
        )


def require_numeric(data: pd.DataFrame, column: str, *, context: str) -> np.ndarray:
    """Return ``data[column]`` as float64, or raise naming the first non-numeric row."""
    series = data[column]
    converted = pd.to_numeric(series, errors="coerce")
    bad = converted.isna() & series.notna()
    if bad.any():
        pos = int(np.argmax(bad.to_numpy()))
        raise AnalysisDataError(
            f"{context}: column {column!r} must be numeric; "
            f"row {series.index[pos]!r} holds {series.iloc[pos]!r}."
        )
    return np.asarray(converted, dtype=float)


def require_positive(values: np.ndarray, rows: Sequence[object], column: str, *, context: str) -> None:
    """Raise if any value is <= 0 (needed before a log transform)."""
    bad = np.flatnonzero(~(values > 0))
    if bad.size:
        i = int(bad[0])
        raise AnalysisDataError(
            f"{context}: log=True needs {column!r} > 0, but row {rows[i]!r} holds {values[i]!r} "
            f"({bad.size} such row(s)). Use log=False or a shifted variable."
        )


def require_probability(value: float, name: str, *, open_interval: bool = True) -> float:
    """Check ``0 < value < 1`` (or ``0 <= value <= 1``) and return it as float."""
    v = float(value)
    ok = 0.0 < v < 1.0 if open_interval else 0.0 <= v <= 1.0
    if not ok:
        bounds = "strictly between 0 and 1" if open_interval else "between 0 and 1"
        raise AnalysisDataError(f"{name} must be {bounds}; got {value!r}.")
    return v


def design_columns(data: pd.DataFrame, columns: Sequence[str], *, context: str) -> pd.DataFrame:
    """Numeric design columns for covariates: numbers stay, categories become 0/1 dummies.

    A numeric column is used as is; a categorical, string or boolean column is expanded to
    treatment-coded dummies (first level in sorted order is the reference). Column names of
    the dummies are ``"<column>[<level>]"``.
    """
    parts: list[pd.DataFrame] = []
    for col in columns:
        s = data[col]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            levels = sorted(pd.unique(s.dropna()), key=str)
            if len(levels) < 2:
                raise AnalysisDataError(
                    f"{context}: covariate {col!r} has fewer than two levels ({levels!r}); drop it."
                )
            cat = pd.Categorical(s, categories=levels)
            dummies = pd.get_dummies(cat, drop_first=True, dtype=float)
            dummies.columns = [f"{col}[{lvl}]" for lvl in dummies.columns]
            dummies.index = data.index
            dummies[s.isna().to_numpy()] = np.nan
            parts.append(dummies)
        else:
            parts.append(pd.DataFrame({col: s.astype(float)}, index=data.index))
    if not parts:
        return pd.DataFrame(index=data.index)
    return pd.concat(parts, axis=1)
