"""Running an analysis plan over the tidy study data (used by :func:`.study.run_study_analysis`).

Pure: the plan and the :class:`~.sources.StudyData` frames in; rows, tables and plain-data
records out. One :class:`PlanRunner` runs one analysis.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial

import pandas as pd

from immunorehab.analysis._cohort import CohortTables, normalisation_frame, run_normalisation, run_prevalence
from immunorehab.analysis._models import (
    BASELINE,
    FOLLOW_UP,
    FitSettings,
    OutcomeFit,
    Population,
    ancova_frame,
    fit_ancova,
    fit_mixed,
    fit_mmrm,
    long_frame,
)
from immunorehab.analysis._records import Records
from immunorehab.analysis._tidy import covariate_frame, describe, marker_values, rehab_values, source_text
from immunorehab.analysis.sources import StudyData
from immunorehab.errors import AnalysisDataError, AnalysisError, ModelFitError, OutcomeDataError
from immunorehab.study.analysis_plan import AnalysisPlan, Normalisation, Outcome, Prevalence, RehabSource
from immunorehab.study.protocol import Protocol

__all__ = ["PlanRunner"]

_UNIT_DAYS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12}
ProgressCallback = Callable[[str, int, int], None]


class PlanRunner(Records):
    """Runs every outcome, normalisation and prevalence analysis of a plan."""

    def __init__(
        self,
        *,
        protocol: Protocol,
        plan: AnalysisPlan,
        data: StudyData,
        blinded: bool,
        populations: tuple[str, ...],
        skip_unavailable: bool,
        cohort_groups: pd.Series | None,
        cohort_levels: list[str],
        seed_of: Callable[[int, str], tuple[int, int]],
    ) -> None:
        super().__init__(protocol=protocol, plan=plan, data=data, blinded=blinded, populations=populations)
        self.skip_unavailable = skip_unavailable
        self.cohort_groups = cohort_groups
        self.cohort_levels = cohort_levels
        self.seed_of = seed_of
        self.baseline = protocol.baseline_visit().id
        self.visit_order = [v.id for v in protocol.visits]
        self.unit_days = _UNIT_DAYS[plan.time_unit]
        self.times = {v.id: v.day / self.unit_days for v in protocol.visits}
        self.people = self._people()

    # -- participants ------------------------------------------------------------------
    @property
    def group_column(self) -> str:
        return "arm" if self.design == "trial" else "group"

    def _covariate_names(self) -> list[str]:
        names = list(self.default_covariates)
        names += [c for o in self.plan.outcomes for c in (o.covariates or [])]
        names += [c for n in self.plan.normalisation for c in n.covariates]
        special = {"arm", self.plan.group.id if self.plan.group else ""}
        names += [p.by for p in self.plan.prevalence if p.by is not None and p.by not in special]
        return list(dict.fromkeys(names))

    def _people(self) -> pd.DataFrame:
        """The analysis population: randomised (trial) or eligible (cohort) participants."""
        p = self.data.participants
        base = p[p["randomised_on"].notna()] if self.design == "trial" else p[p["eligible"].astype(bool)]
        frame = base[["participant_id"]].copy()
        if self.design == "trial":
            frame["arm"] = "all" if self.blinded else base["arm"]
            pp = self.plan.per_protocol
            if pp is not None and not self.blinded and self.data.rehab is not None:
                status = self.data.rehab.set_index("participant_id")["status"]
                done = frame["participant_id"].map(status).eq("completer")
                frame["completer"] = ~frame["arm"].isin(pp.programme_arms) | done
        else:
            groups = self.cohort_groups if self.cohort_groups is not None else pd.Series(dtype=object)
            frame["group"] = frame["participant_id"].map(groups) if self.plan.group else "all"
        covs = covariate_frame(base, self._covariate_names())
        return pd.concat([frame, covs], axis=1).sort_values("participant_id").reset_index(drop=True)

    def _restrict(self, values: pd.DataFrame) -> pd.DataFrame:
        return values[values["participant_id"].isin(self.people["participant_id"])]

    # -- driving -------------------------------------------------------------------------
    def run(self, on_progress: ProgressCallback | None) -> None:
        items: list[Outcome | Normalisation | Prevalence] = [
            *self.plan.outcomes,
            *self.plan.normalisation,
            *self.plan.prevalence,
        ]
        for done, item in enumerate(items, start=1):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._item(item)
            self.record_warnings([f"{item.id}: {w.category.__name__}: {w.message}" for w in caught])
            if on_progress is not None:
                on_progress("study analysis", done, len(items))

    def _item(self, item: Outcome | Normalisation | Prevalence) -> None:
        try:
            if isinstance(item, Outcome):
                self._outcome(item)
            elif isinstance(item, Normalisation):
                self._normalisation(item)
            else:
                self._prevalence(item)
        except (AnalysisDataError, ModelFitError) as exc:
            self._unavailable(item.id, f"{item.id!r}: {exc}", error=AnalysisError)

    def _guarded(self, o: Outcome, population: str, fit: Callable[[], OutcomeFit]) -> OutcomeFit | None:
        """One population's fit; too little data skips it (or raises naming outcome and population)."""
        try:
            return fit()
        except (AnalysisDataError, ModelFitError) as exc:
            message = f"{o.id!r} ({population}): {exc}"
            self._unavailable(o.id, message, error=AnalysisError, population=population)
            return None

    def _unavailable(
        self,
        ident: str,
        message: str,
        *,
        error: type[AnalysisError] = OutcomeDataError,
        population: str | None = None,
    ) -> None:
        if not self.skip_unavailable:
            raise error(f"outcome {message}; use --skip-unavailable to analyse the other outcomes")
        entry = {"outcome": ident, "reason": message}
        if population is not None:
            entry["population"] = population
        self.skipped.append(entry)

    # -- outcomes ------------------------------------------------------------------------
    def _outcome(self, o: Outcome) -> None:
        if isinstance(o.source, RehabSource):
            self._rehab(o, o.source)
            return
        values, note = marker_values(o.source, self.data)
        values = self._restrict(values)
        self.handling[o.id] = note
        wanted = o.visits or self.visit_order
        observed = set(values.loc[values["value"].notna(), "visit"])
        empty = [v for v in wanted if v not in observed]
        if (o.model in ("mmrm", "mixed") and empty) or len(empty) == len(wanted):
            where = ", ".join(v for v in self.visit_order if v in observed) or "no visit"
            self._unavailable(
                o.id,
                f"{o.id!r} ({source_text(o.source)}) has no data at {', '.join(empty)} in the store "
                f"(values stored at: {where})",
            )
            return
        self._describe(o.id, values)
        if o.model == "descriptive" or self.blinded:
            self.datasets[o.id] = self._values_dataset(values)
            if self.blinded and o.id == self.primary_id:
                at = o.primary_visit or o.visits[-1]
                seen = values.loc[(values["visit"] == at) & values["value"].notna(), "participant_id"]
                self.analysed["itt"] = {"all": int(seen.nunique())}
            return
        fit = {"ancova": self._ancova, "mmrm": self._mmrm, "mixed": self._mixed}[o.model]
        fit(o, values)

    def _values_dataset(self, values: pd.DataFrame) -> pd.DataFrame:
        out = values.sort_values(["participant_id", "visit"], kind="stable").reset_index(drop=True)
        if not self.blinded:
            group = self.people.set_index("participant_id")[self.group_column]
            out.insert(1, self.group_column, out["participant_id"].map(group))
        return out

    def _describe(self, ident: str, values: pd.DataFrame) -> None:
        group = self.people.set_index("participant_id")[self.group_column]
        labelled = values.assign(group=values["participant_id"].map(group).fillna("ungrouped"))
        parts = [labelled.assign(group="all")]
        if not self.blinded and not (self.design == "cohort" and self.plan.group is None):
            parts.insert(0, labelled)
        order = [a.id for a in self.protocol.arms] + self.cohort_levels + ["ungrouped", "all"]
        self.descriptives.append(describe(pd.concat(parts), ident, self.visit_order, order))

    def _rehab(self, o: Outcome, source: RehabSource) -> None:
        if self.blinded:
            self.skipped.append({"outcome": o.id, "reason": "rehabilitation adherence reveals the arm"})
            return
        values = rehab_values(source, self.data).assign(visit="programme")
        if values["value"].notna().sum() == 0:
            self._unavailable(
                o.id, f"{o.id!r} ({source_text(source)}): no rehabilitation programme prescribed yet"
            )
            return
        self._describe(o.id, values)
        self.datasets[o.id] = self._values_dataset(values)

    def _pops(self, o: Outcome) -> list[Population]:
        choices: dict[str, list[Population]] = {
            "itt": ["itt"],
            "per_protocol": ["per_protocol"],
            "both": ["itt", "per_protocol"],
        }
        declared = choices[o.population]
        if self.design == "cohort":
            return ["cohort"]
        return [p for p in declared if p in self.populations and (p == "itt" or "completer" in self.people)]

    def _settings(self, o: Outcome, covariates: Sequence[str]) -> FitSettings:
        imp = self.plan.imputation
        return FitSettings(
            reference=self.plan.reference_arm or "",
            contrast_arms=self.contrast_arms,
            covariates=tuple(covariates),
            conf_level=1 - self.plan.alpha,
            df_method=self.plan.df_method,
            unit_days=self.unit_days,
            unit=self.plan.time_unit,
            imputation=imp,
            mice_seed=self.seed_of(imp.seed, o.id) if imp is not None else None,
        )

    def _keep(self, o: Outcome) -> list[str]:
        extra = ["completer"] if "completer" in self.people else []
        return ["participant_id", self.group_column, *self.covariates_of(o), *extra]

    def _ancova(self, o: Outcome, values: pd.DataFrame) -> None:
        base = o.baseline_visit or self.baseline
        frame = ancova_frame(values, self.people, baseline=base, visit=o.visits[0], keep=self._keep(o))
        self.datasets[o.id] = frame
        settings = self._settings(o, self.covariates_of(o))
        for pop in self._pops(o):
            fit = self._guarded(
                o,
                pop,
                partial(
                    fit_ancova,
                    frame,
                    population=pop,
                    log=o.transform == "log",
                    impute=o.impute,
                    settings=settings,
                ),
            )
            if fit is not None:
                self._add(o, pop, fit)
                self._count_analysed(o, pop, frame, fit, [BASELINE, FOLLOW_UP, *self.covariates_of(o)])

    def _ordered(self, visits: Sequence[str]) -> list[str]:
        return sorted(visits, key=self.visit_order.index)

    def _mmrm(self, o: Outcome, values: pd.DataFrame) -> None:
        visits = self._ordered(o.visits)
        base = o.baseline_visit or self.baseline
        frame = long_frame(values, self.people, baseline=base, visits=visits, keep=self._keep(o))
        self.datasets[o.id] = frame
        primary = o.primary_visit or visits[-1]
        settings = self._settings(o, self.covariates_of(o))
        for pop in self._pops(o):
            sub = frame if pop == "itt" else frame[frame["completer"]]
            fit = self._guarded(
                o,
                pop,
                partial(
                    fit_mmrm, sub, visits=visits, primary=primary, log=o.transform == "log", settings=settings
                ),
            )
            if fit is None:
                continue
            self._add(o, pop, fit)
            at = sub[sub["visit"] == primary]
            self._count_analysed(o, pop, at, fit, [BASELINE, "value", *self.covariates_of(o)])

    def _mixed(self, o: Outcome, values: pd.DataFrame) -> None:
        # A trial's mixed model starts at the plan's baseline visit. A cohort's baseline is usually the
        # acute phase, where a straight-line trend to 24 months does not hold, so a cohort's model covers
        # the outcome's own visits unless the outcome names a baseline_visit.
        start = o.baseline_visit or (self.baseline if self.design == "trial" else None)
        visits = self._ordered(list(dict.fromkeys([*([start] if start else []), *o.visits])))
        keep = self._keep(o)
        frame = long_frame(values, self.people, baseline=None, visits=visits, keep=keep)
        frame["time"] = frame["visit"].map(self.times)
        group, levels = self._model_groups()
        if group is not None:
            frame = frame[frame[group].notna()]
        settings = self._settings(o, self.covariates_of(o))
        for pop in self._pops(o):
            sub = frame if pop != "per_protocol" else frame[frame["completer"]]
            fit = self._guarded(
                o,
                pop,
                partial(
                    fit_mixed,
                    sub,
                    group=group,
                    levels=levels,
                    log=o.transform == "log",
                    report_levels=self.design == "cohort",
                    settings=settings,
                ),
            )
            if fit is None:
                continue
            if self.design == "trial":
                fit.rows = [r for r in fit.rows if r["contrast"].split(" vs ")[0] in self.contrast_arms]
            self._add(o, pop, fit)
            if fit.dataset is not None:
                self.datasets[o.id if pop != "per_protocol" else f"{o.id}:per_protocol"] = fit.dataset

    def _model_groups(self) -> tuple[str | None, list[str]]:
        """Grouping column and levels (reference first) for mixed models and Kaplan-Meier."""
        if self.design == "cohort":
            return ("group", self.cohort_levels) if self.plan.group is not None else (None, [])
        if self.blinded:
            return None, []
        present = set(self.people["arm"])
        reference = self.plan.reference_arm or self.protocol.arms[0].id
        return "arm", [reference] + [
            a.id for a in self.protocol.arms if a.id != reference and a.id in present
        ]

    def _add(self, o: Outcome, population: str, fit: OutcomeFit) -> None:
        meta = {
            "outcome": o.id,
            "label": o.label,
            "source": o.source.type,
            "family": o.family,
            "role": o.role,
            "population": population,
            "model": o.model,
        }
        self.rows += [{**meta, **row} for row in fit.rows]
        self.by_visit += [
            {"outcome": o.id, "label": o.label, "population": population, **r} for r in fit.by_visit
        ]
        for name, table in fit.tables.items():
            self.add_table(name, table.assign(population=population), o.id, o.label)
        self.fits.setdefault(o.id, {})[population] = {
            k: v for k, v in fit.notes.items() if isinstance(v, str | int | float | bool | list)
        }

    def _count_analysed(
        self, o: Outcome, pop: str, frame: pd.DataFrame, fit: OutcomeFit, needed: Sequence[str]
    ) -> None:
        """Participants analysed per arm for the primary outcome (the CONSORT 'analysed' box)."""
        if o.role != "primary" or o.id != self.primary_id:
            return
        rows = frame if pop == "itt" else frame[frame["completer"]]
        if fit.notes.get("method") != "mice":
            rows = rows[rows[list(needed)].notna().all(axis=1)]
        counts = rows.groupby("arm").size()
        self.analysed[pop] = {str(k): int(v) for k, v in counts.items()}

    # -- cohort-style analyses --------------------------------------------------------------
    def _normalisation(self, item: Normalisation) -> None:
        values, note = marker_values(item.source, self.data)
        self.handling[item.id] = note
        group, levels = self._model_groups()
        people = self.people if group is None else self.people[self.people[group].notna()]
        keep = ["participant_id", *([group] if group else []), *item.covariates]
        frame, counts = normalisation_frame(
            self._restrict(values),
            people[keep],
            item,
            baseline=item.baseline_visit or self.baseline,
            times=self.times,
        )
        self.cohort_counts[item.id] = counts
        if counts["at_risk"] == 0:
            self._unavailable(item.id, f"{item.id!r} ({source_text(item.source)}): nobody at risk {counts}")
            return
        self._collect(
            item.id,
            run_normalisation(frame, item, group=group, levels=levels, conf_level=1 - self.plan.alpha),
        )

    def _prevalence(self, item: Prevalence) -> None:
        rows = self.data.visits
        rows = self._restrict(rows[(rows["measure"] == item.measure) & rows["visit"].isin(item.visits)])
        if rows.empty:
            self._unavailable(
                item.id, f"{item.id!r}: no {item.measure!r} recorded at {', '.join(item.visits)}"
            )
            return
        by = self._prevalence_group(item)
        keep = ["participant_id", *([by] if by else [])]
        frame = rows[["participant_id", "visit", "value"]].merge(self.people[keep], on="participant_id")
        tables = run_prevalence(
            frame, item, group=by, visit_order=self.visit_order, conf_level=1 - self.plan.alpha
        )
        self._collect(item.id, tables)

    def _prevalence_group(self, item: Prevalence) -> str | None:
        if item.by is None or (item.by == "arm" and self.blinded):
            return None
        if item.by == "arm" or (self.plan.group is not None and item.by == self.plan.group.id):
            return self.group_column
        return item.by

    def _collect(self, ident: str, result: CohortTables) -> None:
        for name, table in result.tables.items():
            self.add_table(name, table, None, None)
        if result.notes:
            self.cohort_counts.setdefault(ident, {}).update(result.notes)
        if result.dataset is not None:
            self.datasets[ident] = result.dataset
