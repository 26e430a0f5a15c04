"""What a study analysis accumulates, and how it becomes frames, methods and provenance.

:class:`Records` is the base of :class:`~._runner.PlanRunner`: it collects result rows, tables,
datasets and notes as the outcomes run, then adjusts p-values within the declared families
(R ``p.adjust`` semantics via :func:`~immunorehab.analysis.adjust_pvalues`) and writes the
plain-data ``methods`` and ``provenance`` records.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
from typing import Any

import numpy as np
import pandas as pd

from immunorehab.analysis._tidy import DESCRIPTIVE_COLUMNS, source_text
from immunorehab.analysis.multiplicity import adjust_pvalues
from immunorehab.analysis.sources import StudyData
from immunorehab.study.analysis_plan import AnalysisPlan, Outcome
from immunorehab.study.protocol import Protocol

__all__ = ["BY_VISIT_COLUMNS", "RESULT_COLUMNS", "Records", "software_versions"]

RESULT_COLUMNS = [
    "outcome",
    "label",
    "source",
    "family",
    "role",
    "population",
    "model",
    "scale",
    "contrast",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "adjust_method",
    "n",
    "n_missing",
]
BY_VISIT_COLUMNS = [
    "outcome",
    "label",
    "population",
    "visit",
    "contrast",
    "estimate",
    "se",
    "df",
    "ci_low",
    "ci_high",
    "p_value",
    "scale",
]
_SOFTWARE = ("immunorehab", "numpy", "pandas", "scipy", "statsmodels", "lifelines", "sqlalchemy")
_POPULATION_TEXT = {
    "itt": "intention to treat: every randomised participant, analysed in the allocated arm",
    "per_protocol": (
        "per protocol (sensitivity): completers of the rehabilitation programme in the programme arms "
        "(attended at least the programme's completer fraction of the sessions offered) and every "
        "participant of the other arms; complete cases"
    ),
    "cohort": "every eligible participant of the cohort",
}
_MODEL_TEXT = {
    "ancova": "ANCOVA (OLS) of the follow-up value on arm, baseline value and covariates; t tests on "
    "the residual degrees of freedom",
    "mmrm": "MMRM with unstructured covariance, visit x arm and baseline x visit terms, REML",
    "mixed": "linear mixed model with random intercept and slope over time per participant (REML, "
    "Satterthwaite degrees of freedom)",
    "descriptive": "descriptive summaries only",
}


def software_versions() -> dict[str, str]:
    """Installed versions of the packages that computed the analysis."""
    out = {"python": platform.python_version()}
    for name in _SOFTWARE:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - editable installs
            out[name] = "unknown"
    return out


def _plain(value: Any) -> Any:
    """JSON-friendly copy (numpy scalars to Python numbers, NaN to None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class Records:
    """Accumulators of one analysis run and the records built from them."""

    def __init__(
        self,
        *,
        protocol: Protocol,
        plan: AnalysisPlan,
        data: StudyData,
        blinded: bool,
        populations: tuple[str, ...],
    ) -> None:
        self.protocol, self.plan, self.data = protocol, plan, data
        self.blinded, self.populations = blinded, populations
        self.design = protocol.design
        self.rows: list[dict[str, Any]] = []
        self.by_visit: list[dict[str, Any]] = []
        self.descriptives: list[pd.DataFrame] = []
        self.tables: dict[str, list[pd.DataFrame]] = {}
        self.datasets: dict[str, pd.DataFrame] = {}
        self.handling: dict[str, dict[str, Any]] = {}
        self.fits: dict[str, dict[str, dict[str, Any]]] = {}
        self.cohort_counts: dict[str, dict[str, Any]] = {}
        self.analysed: dict[str, dict[str, int]] = {}
        self.skipped: list[dict[str, str]] = []
        self.warnings: list[str] = []

    # -- plan lookups ------------------------------------------------------------------
    @property
    def default_covariates(self) -> list[str]:
        declared = self.plan.covariates
        return list(declared) if declared is not None else [f.name for f in self.protocol.stratification]

    def covariates_of(self, o: Outcome) -> list[str]:
        return list(o.covariates) if o.covariates is not None else self.default_covariates

    @property
    def contrast_arms(self) -> tuple[str, ...]:
        if self.plan.contrasts:
            return tuple(c.arm for c in self.plan.contrasts)
        return tuple(a.id for a in self.protocol.arms if a.id != self.plan.reference_arm)

    @property
    def primary_id(self) -> str | None:
        return next(
            (o.id for o in self.plan.outcomes if o.role == "primary" and o.model != "descriptive"), None
        )

    def add_table(self, name: str, table: pd.DataFrame, ident: str | None, label: str | None) -> None:
        if ident is not None:
            table = table.copy()
            table.insert(0, "label", label)
            table.insert(0, "outcome", ident)
        self.tables.setdefault(name, []).append(table)

    def record_warnings(self, messages: list[str]) -> None:
        self.warnings += list(dict.fromkeys(messages))

    # -- frames --------------------------------------------------------------------------
    def results_frame(self) -> pd.DataFrame:
        """Result rows with p-values adjusted within each family (and population, contrast)."""
        frame = pd.DataFrame(self.rows, columns=RESULT_COLUMNS)
        if frame.empty:
            return frame
        frame["adjust_method"] = frame["adjust_method"].astype(object)
        keys = ["family", "population"] + ([] if self.plan.multiplicity.across_contrasts else ["contrast"])
        for key, index in frame.groupby(keys, sort=False).groups.items():
            method = self.plan.family_method(str(key[0]))  # type: ignore[index]
            frame.loc[index, "p_adjusted"] = adjust_pvalues(
                frame.loc[index, "p_value"].to_numpy(float), method
            )
            frame.loc[index, "adjust_method"] = method
        frame["p_adjusted"] = frame["p_adjusted"].astype(float)
        for col in ("n", "n_missing"):
            frame[col] = frame[col].astype(int)
        return frame

    def descriptives_frame(self) -> pd.DataFrame:
        parts = [d for d in self.descriptives if not d.empty]
        if not parts:
            return pd.DataFrame(columns=DESCRIPTIVE_COLUMNS)
        return pd.concat(parts, ignore_index=True)[DESCRIPTIVE_COLUMNS]

    def by_visit_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.by_visit, columns=BY_VISIT_COLUMNS)

    def cohort_frames(self) -> dict[str, pd.DataFrame]:
        return {name: pd.concat(parts, ignore_index=True) for name, parts in self.tables.items()}

    # -- records -------------------------------------------------------------------------
    def _outcome_record(self, o: Outcome) -> dict[str, Any]:
        return {
            "id": o.id,
            "label": o.label,
            "source": source_text(o.source),
            "source_type": o.source.type,
            "role": o.role,
            "family": o.family,
            "model": o.model,
            "model_text": _MODEL_TEXT[o.model],
            "transform": o.transform,
            "scale": "ratio" if o.transform == "log" else "difference",
            "visits": list(o.visits),
            "baseline_visit": o.baseline_visit or self.protocol.baseline_visit().id,
            "primary_visit": o.primary_visit or (o.visits[-1] if o.model == "mmrm" else None),
            "covariates": self.covariates_of(o),
            "population": o.population,
            "fits": self.fits.get(o.id, {}),
        }

    def _multiplicity(self) -> dict[str, Any]:
        families = [
            {
                "id": f.id,
                "label": f.label,
                "method": self.plan.family_method(f.id),
                "outcomes": [o.id for o in self.plan.outcomes if o.family == f.id],
            }
            for f in self.plan.families
        ]
        return {"across_contrasts": self.plan.multiplicity.across_contrasts, "families": families}

    def methods(self) -> dict[str, Any]:
        """Plain data for the methods paragraph (JSON-serialisable)."""
        plan = self.plan
        trial = self.design == "trial"
        imputation = None
        if plan.imputation is not None:
            imputation = {**plan.imputation.model_dump(), "pooling": "Rubin's rules, Barnard-Rubin df"}
        record: dict[str, Any] = {
            "design": self.design,
            "blinded": self.blinded,
            "alpha": plan.alpha,
            "conf_level": 1 - plan.alpha,
            "baseline_visit": self.protocol.baseline_visit().id,
            "time_unit": plan.time_unit,
            "reference_arm": plan.reference_arm,
            "contrasts": [
                {"arm": a, "contrast": f"{a} vs {plan.reference_arm}", "primary": self._primary_contrast(a)}
                for a in (self.contrast_arms if trial else ())
            ],
            "covariates": self.default_covariates,
            "populations": {p: _POPULATION_TEXT[p] for p in (self.populations if trial else ("cohort",))},
            "df_method": {"ancova": "residual (OLS t)", "mmrm": plan.df_method, "mixed": "satterthwaite"},
            "imputation": imputation,
            "multiplicity": self._multiplicity(),
            "outcomes": [self._outcome_record(o) for o in plan.outcomes],
            "group": None if plan.group is None else plan.group.model_dump(),
            "normalisation": [
                {**n.model_dump(), "counts": self.cohort_counts.get(n.id, {})} for n in plan.normalisation
            ],
            "prevalence": [p.model_dump() for p in plan.prevalence],
            "data_handling": self.handling,
            "analysed": self.analysed,
            "skipped": self.skipped,
            "warnings": self.warnings,
        }
        return dict(_plain(record))

    def _primary_contrast(self, arm: str) -> bool:
        declared = {c.arm: c.primary for c in self.plan.contrasts}
        return declared.get(arm, True)

    def provenance(self, *, by: str, role: str, today: dt.date) -> dict[str, Any]:
        """Protocol hash, software, seeds and row counts: what any number can be traced to."""
        seeds = {o: fit["seed"] for o, pops in self.fits.items() for fit in pops.values() if "seed" in fit}
        record = {
            "study": self.data.study,
            "protocol_sha256": self.data.protocol_sha256,
            "software": software_versions(),
            "seeds": {"mice": seeds, "rng": "numpy.random.default_rng([seed, crc32(outcome id)])"},
            "rows": dict(self.data.rows),
            "analysed_by": by,
            "role": role,
            "blinded": self.blinded,
            "populations": list(self.populations) if self.design == "trial" else ["cohort"],
            "as_of": today.isoformat(),
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        return dict(_plain(record))
