"""Everything the report shows, assembled from store facts and the study analysis.

:func:`build_content` turns :class:`~immunorehab.report.collect.StudyFacts` and a
``StudyAnalysis`` into a :class:`ReportContent`: tables, embedded figures, methods text and
the provenance appendix. Nothing statistical is estimated here: contrasts, descriptive
statistics, Kaplan-Meier curves and prevalences come from the analysis; counts and
summaries of baseline covariates, adherence and files come from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from immunorehab.errors import ReportError
from immunorehab.report.collect import StudyFacts
from immunorehab.report.consort import CohortFlow, ConsortFlow, cohort_flow, consort_flow
from immunorehab.report.embed import EmbeddedFigure, embed
from immunorehab.report.figures import forest_figure, marker_panels, trajectory_panels
from immunorehab.report.flowchart import draw_cohort_flow, draw_consort
from immunorehab.report.longitudinal import by_visit_table, cohort_figures, cohort_tables
from immunorehab.report.methods import MethodsParagraph, methods_paragraphs
from immunorehab.report.outcomes import (
    DESCRIPTIVE_COLUMNS,
    RESULT_COLUMNS,
    arm_labeller,
    baseline_outcome_rows,
    descriptives_table,
    outcome_table,
)
from immunorehab.report.provenance import Provenance, build_provenance
from immunorehab.report.tables import Group, Table, adherence_table, baseline_table, safety_table
from immunorehab.study.analysis_plan import Outcome

__all__ = ["AnalysisLike", "ReportContent", "build_content"]


class AnalysisLike(Protocol):
    """What the report reads of ``immunorehab.analysis.study.StudyAnalysis``."""

    @property
    def results(self) -> pd.DataFrame: ...

    @property
    def descriptives(self) -> pd.DataFrame: ...

    @property
    def methods(self) -> Mapping[str, Any]: ...

    @property
    def provenance(self) -> Mapping[str, Any]: ...

    @property
    def by_visit(self) -> pd.DataFrame: ...

    @property
    def cohort(self) -> Mapping[str, pd.DataFrame]: ...

    @property
    def datasets(self) -> Mapping[str, pd.DataFrame]: ...


@dataclass(frozen=True)
class ReportContent:
    """The report, ready for the template."""

    facts: StudyFacts
    flow: ConsortFlow | CohortFlow
    flow_figure: EmbeddedFigure
    baseline: Table
    adherence: Table | None
    safety: Table | None
    adherence_note: str
    outcomes: Table | None
    outcomes_note: str
    figures: tuple[EmbeddedFigure, ...]
    methods: tuple[MethodsParagraph, ...]
    descriptives: Table | None
    provenance: Provenance
    extra_tables: tuple[tuple[str, Table], ...] = field(default=())

    frames: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        """What the badge says: a cohort has no allocation; a trial report is blinded or not."""
        if self.facts.design == "cohort":
            return "Cohort report: no allocation to blind"
        return "Blinded report: all arms pooled" if self.facts.blinded else "Unblinded report: results by arm"


def _check_frame(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportError(
            f"the study analysis' {what} table lacks column(s) {', '.join(missing)}; "
            f"columns present: {', '.join(map(str, frame.columns))}"
        )


def check_blinded_analysis(analysis: AnalysisLike, arm_ids: Sequence[str]) -> None:
    """Refuse a blinded report built from an analysis that carries arms (defence in depth)."""
    arms = set(arm_ids)
    found = set(analysis.descriptives["arm"].astype(str)) & arms
    found |= {a for a in arms for c in analysis.results["contrast"].astype(str) if a in c.split()}
    if found:
        raise ReportError(
            f"refusing to build a blinded report from an unblinded analysis (it names arm(s) "
            f"{', '.join(sorted(found))}): run the analysis blinded"
        )


def _cohort_groups(analysis: AnalysisLike, ids: frozenset[str]) -> list[Group]:
    """Cohort groups (e.g. symptomatic at 12 months) from the frames the analysis modelled."""
    members: dict[str, set[str]] = {}
    for frame in analysis.datasets.values():
        if {"participant_id", "group"} <= set(frame.columns):
            for pid, grp in zip(frame["participant_id"], frame["group"], strict=True):
                if isinstance(grp, str) and pid in ids:
                    members.setdefault(grp, set()).add(str(pid))
    return [Group(g, g, frozenset(m)) for g, m in sorted(members.items())]


def _groups(facts: StudyFacts, frame: pd.DataFrame, analysis: AnalysisLike) -> list[Group]:
    """Table columns: each arm and all randomised (unblinded), or one pooled column."""
    if facts.design == "cohort":
        included = frame[frame["eligible"].astype(bool)] if "eligible" in frame.columns else frame
        ids = frozenset(included["participant_id"])
        return [*_cohort_groups(analysis, ids), Group("all", "All participants", ids)]
    randomised = frame[frame["randomised_on"].notna()] if "randomised_on" in frame.columns else frame
    total = Group("all", "All randomised", frozenset(randomised["participant_id"]))
    if facts.blinded:
        return [total]
    arms = [
        Group(a.id, a.label, frozenset(randomised.loc[randomised["arm"] == a.id, "participant_id"]))
        for a in facts.arms
    ]
    return [*arms, total]


def _primary(facts: StudyFacts) -> Outcome | None:
    """The primary outcome the flow reports (the first primary outcome with a model, as the analysis)."""
    plan = facts.protocol.analysis
    outcomes = plan.outcomes if plan else []
    return next((o for o in outcomes if o.role == "primary" and o.model != "descriptive"), None)


def _primary_visit(outcome: Outcome | None) -> str | None:
    """The visit whose result the outcome reports: declared, else its (last) follow-up visit."""
    if outcome is None or not outcome.visits:
        return None
    return outcome.primary_visit or outcome.visits[-1]


def _analysed(
    facts: StudyFacts, analysis: AnalysisLike, primary: Outcome | None
) -> dict[str, dict[str, int]]:
    """Population -> group -> n analysed for the primary outcome (the analysis' own counts).

    A blinded analysis estimates nothing by arm; its flow shows how many have the primary
    outcome observed at the primary visit (pooled descriptives).
    """
    recorded = analysis.methods.get("analysed")
    if isinstance(recorded, Mapping) and recorded:
        names = {"itt": "ITT", "per_protocol": "Per protocol"}
        return {
            names.get(str(pop), str(pop)): {str(k): int(v) for k, v in groups.items()}
            for pop, groups in recorded.items()
            if isinstance(groups, Mapping)
        }
    visit = _primary_visit(primary)
    if primary is None or visit is None:
        return {}
    desc = analysis.descriptives
    rows = desc[(desc["outcome"] == primary.id) & (desc["visit"] == visit)]
    return {"With the primary outcome observed": {str(r["arm"]): int(r["n"]) for _, r in rows.iterrows()}}


def _flow(facts: StudyFacts, analysis: AnalysisLike) -> tuple[ConsortFlow | CohortFlow, EmbeddedFigure]:
    protocol = facts.protocol
    criteria = {c.id: c.description for c in protocol.eligibility}
    if facts.design == "cohort":
        labels = {v.id: v.label for v in protocol.visits}
        cflow = cohort_flow(
            facts.participants, facts.visits, criteria=criteria, visit_labels=labels, analysed={}
        )
        fig = embed(draw_cohort_flow(cflow), key="flow", title="Participant flow", caption=_COHORT_CAPTION)
        return cflow, fig
    primary = _primary(facts)
    visit_id = _primary_visit(primary) or protocol.visits[-1].id
    flow = consort_flow(
        facts.participants,
        facts.visits,
        arms=facts.arms,
        criteria=criteria,
        primary_visit=visit_id,
        primary_visit_label=protocol.visit(visit_id).label,
        adherence=facts.adherence,
        analysed=_analysed(facts, analysis, primary),
    )
    fig = embed(
        draw_consort(flow), key="consort", title="CONSORT 2025 flow diagram", caption=_CONSORT_CAPTION
    )
    return flow, fig


_CONSORT_CAPTION = (
    "Counts from the study store on the report date. Lost to follow-up: the primary endpoint visit was "
    "missed and its window has closed. Analysed: participants in each analysis population of the primary "
    "outcome (from the study analysis)."
)
_COHORT_CAPTION = "Counts from the study store on the report date (STROBE-style participant flow)."


def build_content(facts: StudyFacts, analysis: AnalysisLike) -> ReportContent:
    """Assemble the report (see the module docstring)."""
    _check_frame(analysis.results, RESULT_COLUMNS, "results")
    _check_frame(analysis.descriptives, DESCRIPTIVE_COLUMNS, "descriptives")
    if facts.blinded:
        check_blinded_analysis(analysis, [a.id for a in facts.protocol.arms])
    flow, flow_fig = _flow(facts, analysis)
    groups = _groups(facts, facts.participants, analysis)
    labels = dict(zip(analysis.results["outcome"], analysis.results["label"], strict=False))
    labels |= _plan_labels(facts)
    baseline_rows = baseline_outcome_rows(
        analysis.descriptives,
        analysis.results,
        visit=facts.baseline_visit,
        groups=groups,
        labels=labels,
        group_keys=_descriptive_keys(facts, analysis),
    )
    baseline = baseline_table(facts.participants, groups, baseline_rows)
    adherence, safety, note = _adherence(facts)
    outcomes, outcomes_note = _outcomes(facts, analysis)
    figures = _figures(facts, analysis, labels) + _cohort_figures(facts, analysis)
    return ReportContent(
        facts=facts,
        flow=flow,
        flow_figure=flow_fig,
        baseline=baseline,
        adherence=adherence,
        safety=safety,
        adherence_note=note,
        outcomes=outcomes,
        outcomes_note=outcomes_note,
        figures=tuple(figures),
        methods=tuple(
            methods_paragraphs(facts.protocol, blinded=facts.blinded, analysis_methods=analysis.methods)
        ),
        descriptives=_descriptives(facts, analysis, labels) if not analysis.descriptives.empty else None,
        provenance=build_provenance(facts, analysis.provenance, analysis.methods),
        extra_tables=tuple(_extra_tables(facts, analysis)),
        frames={"results": analysis.results, "descriptives": analysis.descriptives},
    )


def _visit_labels(facts: StudyFacts) -> dict[str, str]:
    return {v.id: v.label for v in facts.protocol.visits}


def _extra_tables(facts: StudyFacts, analysis: AnalysisLike) -> list[tuple[str, Table]]:
    out = []
    if not facts.blinded and not analysis.by_visit.empty:
        labeller = arm_labeller({a.id: a.label for a in facts.arms})
        table = by_visit_table(analysis.by_visit, contrast_label=labeller, visit_labels=_visit_labels(facts))
        out.append(("Repeated measures: contrasts at every visit", table))
    plan = facts.protocol.analysis
    unit = plan.time_unit if plan else "months"
    out += cohort_tables(
        analysis.cohort,
        group_label=_group_label(facts),
        term_label=str,
        visit_labels=_visit_labels(facts),
        time_unit=unit,
    )
    return out


def _cohort_figures(facts: StudyFacts, analysis: AnalysisLike) -> list[EmbeddedFigure]:
    plan = facts.protocol.analysis
    return cohort_figures(
        analysis.cohort,
        group_label=_group_label(facts),
        visits=[(v.id, v.label.replace(" follow-up", "")) for v in facts.protocol.visits],
        time_unit=plan.time_unit if plan else "months",
    )


def _plan_labels(facts: StudyFacts) -> dict[str, str]:
    plan = facts.protocol.analysis
    return {o.id: o.label for o in plan.outcomes} if plan else {}


_POOLED = ("all", "pooled", "overall")


def _group_values(analysis: AnalysisLike, facts: StudyFacts | None = None) -> list[str]:
    """Groups of the descriptives: protocol arms in order, then others (cohort groups), pooled last."""
    present = list(dict.fromkeys(analysis.descriptives["arm"].astype(str)))
    arms = [a.id for a in facts.protocol.arms if a.id in present] if facts is not None else []
    pooled = [g for g in present if g in _POOLED]
    return arms + sorted(g for g in present if g not in arms and g not in pooled) + pooled


def _descriptive_keys(facts: StudyFacts, analysis: AnalysisLike) -> dict[str, str]:
    """Table group key -> descriptives ``arm`` value (the pooled group's name varies)."""
    values = _group_values(analysis)
    arms = {a.id for a in facts.protocol.arms}
    pooled = [v for v in values if v not in arms]
    return {"all": pooled[0]} if pooled else {}


def _group_label(facts: StudyFacts) -> Callable[[str], str]:
    labels = {a.id: a.label for a in facts.arms}
    pooled = "All participants" if facts.design == "cohort" else "All participants (pooled)"
    return lambda key: labels.get(key, pooled if key in ("all", "pooled", "overall") else key)


def _adherence(facts: StudyFacts) -> tuple[Table | None, Table | None, str]:
    if facts.design == "cohort":
        return (
            None,
            None,
            "A cohort study delivers no intervention: no adherence or session-based safety data.",
        )
    if facts.adherence is None:
        return (
            None,
            None,
            (
                "Adherence and safety are withheld from this report: rehabilitation records reveal the "
                f"allocated arm and the '{facts.role}' role may not read them."
            ),
        )
    if facts.adherence.empty:
        return None, None, "No rehabilitation programme has been prescribed yet."
    if facts.blinded:
        groups = [Group("all", "All prescribed (arms pooled)", frozenset(facts.adherence["participant_id"]))]
    else:
        with_rx = [a for a in facts.arms if a.has_programme]
        groups = [
            Group(
                a.id,
                a.label,
                frozenset(facts.adherence.loc[facts.adherence["arm"] == a.id, "participant_id"]),
            )
            for a in with_rx
        ]
        if len(groups) > 1:
            groups.append(Group("all", "All prescribed", frozenset(facts.adherence["participant_id"])))
    note = ""
    if not facts.blinded:
        none = [a.label for a in facts.arms if not a.has_programme]
        if none:
            what = "No rehabilitation programme (no sessions, no session-based adverse events)"
            note = f"{what}: {', '.join(none)}."
    aes = facts.adverse_events
    safety = None if aes is None else safety_table(aes, facts.adherence, groups)
    return adherence_table(facts.adherence, groups, show_mode=not facts.blinded), safety, note


def _outcomes(facts: StudyFacts, analysis: AnalysisLike) -> tuple[Table | None, str]:
    results = analysis.results
    if results.empty:
        if facts.blinded:
            return None, (
                "This blinded report shows no comparison between arms: outcomes are summarised with all arms "
                "pooled (see the descriptive statistics and figures)."
            )
        return None, "The study analysis produced no estimates yet (no follow-up data)."
    plan = facts.protocol.analysis
    fams = {f.id: f.label or f.id for f in plan.families} if plan else {}
    labeller = arm_labeller({a.id: a.label for a in facts.arms}) if not facts.blinded else (lambda text: text)
    return outcome_table(results, contrast_label=labeller, family_labels=fams), ""


def _descriptives(facts: StudyFacts, analysis: AnalysisLike, labels: Mapping[str, str]) -> Table:
    visits = facts.protocol.visits
    label_of = _group_label(facts)
    plan = facts.protocol.analysis
    log_scale = {o.id: o.transform == "log" for o in plan.outcomes} if plan else {}
    return descriptives_table(
        analysis.descriptives,
        groups=[(g, label_of(g)) for g in _group_values(analysis, facts)],
        visit_order=[v.id for v in visits],
        visit_labels={v.id: v.label for v in visits},
        labels=labels,
        log_scale=log_scale,
    )


def _sources(analysis: AnalysisLike) -> dict[str, str]:
    return dict(zip(analysis.results["outcome"], analysis.results["source"], strict=False))


def _figures(facts: StudyFacts, analysis: AnalysisLike, labels: Mapping[str, str]) -> list[EmbeddedFigure]:
    out: list[EmbeddedFigure] = []
    sources = _plan_sources(facts) | _sources(analysis)
    results = analysis.results
    immune = results[results["source"] == "cytometry"]
    if not immune.empty and not facts.blinded:
        out += _forests(facts, immune)
    desc = analysis.descriptives
    label_of = _group_label(facts)
    values = _group_values(analysis, facts)
    split = [g for g in values if g not in _POOLED]
    groups = [(g, label_of(g)) for g in (split or values)]  # the pooled line only when nothing else
    visits = [(v.id, v.id) for v in facts.protocol.visits]
    markers = [(o, labels.get(o, o)) for o in dict.fromkeys(desc["outcome"]) if sources.get(o) == "cytometry"]
    if markers:
        fig = marker_panels(desc, outcomes=markers, visits=visits, groups=groups)
        out.append(
            embed(
                fig,
                key="markers",
                title="Immune subsets by visit" + ("" if facts.blinded else " and arm"),
                caption="Median and interquartile range per group and visit (StudyAnalysis.descriptives).",
            )
        )
    cytokines = [
        (o, labels.get(o, o)) for o in dict.fromkeys(desc["outcome"]) if sources.get(o) == "cytokine"
    ]
    if cytokines:
        days = {v.id: v.day for v in facts.protocol.visits}
        fig = trajectory_panels(desc, outcomes=cytokines, visit_days=days, groups=groups)
        by = (
            "symptom group"
            if facts.design == "cohort"
            else ("arm" if not facts.blinded else "visit (pooled)")
        )
        out.append(
            embed(
                fig,
                key="cytokines",
                title=f"Cytokine trajectories to 24 months by {by}",
                caption="Geometric mean concentration per group and visit, log scale; x: scheduled months "
                "since day 0 (StudyAnalysis.descriptives).",
            )
        )
    return out


def _plan_sources(facts: StudyFacts) -> dict[str, str]:
    plan = facts.protocol.analysis
    return {o.id: o.source.type for o in plan.outcomes} if plan else {}


def _forests(facts: StudyFacts, immune: pd.DataFrame) -> list[EmbeddedFigure]:
    out = []
    labeller = arm_labeller({a.id: a.label for a in facts.arms})
    pops = list(dict.fromkeys(immune["population"]))
    pop = "itt" if "itt" in pops else pops[0]
    chosen = immune[immune["population"] == pop]
    for k, (contrast, part) in enumerate(chosen.groupby("contrast", sort=False), start=1):
        ratio = bool((part["scale"] == "ratio").all())
        table = part[["label", "estimate", "ci_low", "ci_high"]].reset_index(drop=True)
        title = f"Immune subsets: {labeller(str(contrast))}"
        what = "geometric-mean ratios" if ratio else "differences"
        population = "ITT" if pop == "itt" else str(pop)
        out.append(
            embed(
                forest_figure(table, ratio=ratio),
                key=f"forest{k}",
                title=title,
                caption=f"Adjusted {what} with 95% CIs, {population} population (StudyAnalysis.results).",
            )
        )
    return out
