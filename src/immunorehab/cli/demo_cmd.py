"""``demo``: the whole chain on two synthetic seed studies (or the capability walk-through)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from immunorehab.cli.common import console
from immunorehab.cli.randomise_cmd import print_balance

if TYPE_CHECKING:
    from immunorehab.simulate.chain import ChainResult
    from immunorehab.study.demo import ChainDemoResult, DemoResult, StudyChecks

__all__ = ["demo_command", "register"]

#: Trial outcomes shown against the truth (the rest are in results.csv and the report).
KEY_OUTCOMES = (
    "iswt_week8",
    "cd4_naive",
    "cd4_cm",
    "cd8_naive",
    "cd8_cm",
    "cd8_em",
    "cd8_temra",
    "cd8_naive_count",
    "cd8_cm_count",
    "cd8_em_count",
    "facit_week8",
)


def demo_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the demo studies, reports and exports.")
    ] = Path("demo-output"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic studies.")] = 2025,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Smaller studies (10,000 events per file, 24 cohort participants)."),
    ] = False,
    walkthrough: Annotated[
        bool,
        typer.Option(
            "--walkthrough",
            help="Instead: each capability's demo step on the three-arm PHOSP-R protocol (60 participants).",
        ),
    ] = False,
    participants: Annotated[
        int, typer.Option("--participants", min=2, help="Walk-through only: number to enrol.")
    ] = 60,
    protocol: Annotated[
        Path | None,
        typer.Option("--protocol", help="Walk-through only: protocol YAML (default: the shipped PHOSP-R)."),
    ] = None,
) -> None:
    """Run the whole chain on two synthetic seed studies and print where the reports are.

    The PHOSP-R immune sub-study trial (31 participants, 8 weeks) and the Fong cohort (78
    participants, 24 months) are simulated through the platform's own services, analysed as
    their protocols prespecify, reported (HTML + PDF) and compared with their ground truth.
    """
    from immunorehab.cli.simulate_study_cmd import progress_bars

    if walkthrough:
        _walkthrough(out, participants, seed, protocol)
        return
    from immunorehab.study.demo import run_chain_demo

    console.print(
        f"immunorehab demo: two synthetic studies calibrated to the seed studies (seed {seed}), built, "
        "gated, assayed, analysed and reported by the platform; both run at once.",
        soft_wrap=True,
    )
    with progress_bars() as on_progress:
        result = run_chain_demo(out, seed=seed, quick=quick, on_progress=on_progress)
    _print_chain_demo(result)


# -- printing the whole-chain demo -------------------------------------------------------------


def _num(value: Any, digits: int = 2) -> str:
    number = float(value)
    return "-" if not math.isfinite(number) else f"{number:.{digits}f}"


def _effects_table(chain: ChainResult) -> Table:
    table = Table(
        title="Face-to-face vs usual care at 8 weeks: analysis (ANCOVA) vs simulated truth",
        title_justify="left",
    )
    for column in ("outcome", "population", "estimate (95% CI)", "p adj.", "truth", "CI covers truth"):
        table.add_column(column)
    rows = chain.effects[chain.effects["outcome"].isin(KEY_OUTCOMES)]
    order = {name: i for i, name in enumerate(KEY_OUTCOMES)}
    rows = rows.sort_values(
        ["outcome", "population"], key=lambda c: c.map(order) if c.name == "outcome" else c
    )
    for row in rows.to_dict(orient="records"):
        digits = 1 if row["scale"] == "difference" else 3
        low, high = _num(row["ci_low"], digits), _num(row["ci_high"], digits)
        table.add_row(
            str(row["label"]),
            "ITT" if row["population"] == "itt" else "per protocol",
            f"{_num(row['estimate'], digits)} ({low} to {high})",
            _num(row["p_adjusted"], 3),
            _num(row["true_effect"], digits),
            "yes" if row["covered"] else "NO",
        )
    return table


def _gating_line(chain: ChainResult) -> str:
    diff = chain.gating["diff"].abs()
    outside = int((~chain.gating["within"]).sum())
    return (
        f"Gating vs truth: {len(diff)} stored subset results in {chain.study.gated} files; "
        f"|gated - true| % of parent: median {diff.median():.2f}, 99th percentile "
        f"{diff.quantile(0.99):.2f}, max {diff.max():.2f} points; {outside} outside the tolerance "
        "(1.0 point, wider for parents under 3,000 events)."
    )


def _checks_lines(checks: StudyChecks) -> list[str]:
    return [
        f"Allocation chain: {checks.allocation_check}. Audit chain: {checks.audit_check}.",
        "Exported: " + ", ".join(str(p) for p in checks.exports),
    ]


def _reports_lines(chain: ChainResult) -> list[str]:
    lines = []
    for name, folder in chain.reports.items():
        pages = chain.report_pages.get(name)
        kind = "blinded pooled report (assessor)" if name.endswith("blinded") else "report (statistician)"
        lines.append(f"{kind.capitalize()}: {folder / 'report.html'} and report.pdf ({pages} pages)")
    lines.append(
        f"Analysis outputs: {chain.analysis_dir} (results.csv, descriptives.csv, analysis.json, ...)"
    )
    return lines


def _print_trial(chain: ChainResult, checks: StudyChecks) -> None:
    console.rule("Seed trial: face-to-face rehabilitation vs usual care, immune sub-study (PHOSP-R-like)")
    for line in chain.study.describe():
        console.print(line, soft_wrap=True)
    if checks.balance is not None:
        print_balance(checks.balance)
    for line in [*_checks_lines(checks), _gating_line(chain)]:
        console.print(line, soft_wrap=True)
    console.print(_effects_table(chain))
    covered = chain.effects["covered"]
    console.print(
        f"{int(covered.sum())} of {len(covered)} confidence intervals (every outcome and population) "
        "cover the simulated truth; subsets' % of parent move by closure (counts carry the configured "
        "ratios).",
        soft_wrap=True,
    )
    for line in _reports_lines(chain):
        console.print(line, soft_wrap=True)


def _cohort_lines(cohort: dict[str, Any]) -> list[str]:
    lines = []
    for visit, (est, low, high, seen, target) in cohort["prevalence"].items():
        lines.append(
            f"Symptoms at {visit}: {est:.1%} (95% CI {low:.1%} to {high:.1%}); truth {seen:.1%} of "
            f"those seen, calibrated to {target:.0%}."
        )
    for visit in ("month6", "month12", "month24"):
        sym, asym, ratio = cohort["inflammation"][visit]
        t_sym, t_asym, t_ratio = cohort["true_inflammation"].get(visit, (math.nan,) * 3)
        lines.append(
            f"IL-6 geometric mean at {visit}, symptomatic vs asymptomatic at 12 months: {sym:.2f} vs "
            f"{asym:.2f} pg/mL (ratio {ratio:.2f}); truth {t_sym:.2f} vs {t_asym:.2f} (ratio {t_ratio:.2f})."
        )
    medians = cohort.get("median_months", {})
    if medians:
        lines.append(
            "Kaplan-Meier median months to IL-6 <= 3.53 pg/mL: "
            + ", ".join(f"{g} {m:.1f}" for g, m in medians.items())
            + "; true share with IL-6 normal at 24 months: "
            + f"{cohort['normalised_24m']['IL-6']:.0%}."
        )
    for term, (hr, low, high, p) in cohort.get("cox", {}).items():
        lines.append(
            f"Cox model of IL-6 normalisation: {term} HR {hr:.2f} ({low:.2f} to {high:.2f}), p={p:.3g}."
        )
    return lines


def _print_cohort(chain: ChainResult, checks: StudyChecks) -> None:
    console.rule("Seed cohort: post-COVID symptoms and inflammation to 24 months (Fong 2023-like)")
    for line in chain.study.describe():
        console.print(line, soft_wrap=True)
    for line in [*_checks_lines(checks), _gating_line(chain), *_cohort_lines(chain.cohort)]:
        console.print(line, soft_wrap=True)
    for line in _reports_lines(chain):
        console.print(line, soft_wrap=True)


def _print_chain_demo(result: ChainDemoResult) -> None:
    trial, cohort = result.chains["seed-trial"], result.chains["seed-cohort"]
    _print_trial(trial, result.checks["seed-trial"])
    _print_cohort(cohort, result.checks["seed-cohort"])
    console.rule()
    for chain in (trial, cohort):
        for skipped in chain.skipped:
            console.print(f"{chain.study.preset}: skipped {skipped.get('outcome')}: {skipped.get('reason')}")
    times = ", ".join(
        f"{name} {c.seconds['simulate']:.0f} s build + {c.seconds['analyse']:.0f} s analysis + "
        f"{c.seconds['report']:.0f} s reports"
        for name, c in result.chains.items()
    )
    console.print(f"Done in {result.seconds:.0f} s ({times}).", soft_wrap=True)
    console.print("Open the reports:", soft_wrap=True)
    for chain in (trial, cohort):
        console.print(f"  {chain.reports['report'] / 'report.html'}", soft_wrap=True)


# -- the capability walk-through -----------------------------------------------------------------


def _walkthrough(out: Path, participants: int, seed: int, protocol: Path | None) -> None:
    from rich.progress import Progress, TaskID

    from immunorehab.study.demo import run_demo

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Randomising", total=participants)
        tasks: dict[str, TaskID] = {}

        def step_progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done, total=total)

        result = run_demo(
            out,
            n=participants,
            seed=seed,
            protocol_path=protocol,
            on_progress=lambda: progress.advance(task),
            on_step_progress=step_progress,
        )
    _report(result)


def _report(result: DemoResult) -> None:
    console.print(f"Demo study '{result.study}' in {result.db_path}")
    console.print(
        f"Enrolled {result.enrolled} synthetic participants from {result.import_file.name}; "
        f"{result.ineligible} failed screening ({', '.join(result.failures) or 'none'}), "
        f"{result.randomised} randomised, {result.withdrawn} withdrawn."
    )
    print_balance(result.balance)
    console.print(f"Allocation chain: {result.allocation_check}. Audit chain: {result.audit_check}.")
    console.print(
        f"Visits as of {result.today}: " + ", ".join(f"{v} {k}" for k, v in result.visit_counts.items())
    )
    for path in result.exports:
        console.print(f"Exported {path}")
    for name, lines in result.steps:
        console.rule(name.rpartition(":")[2].replace("_", " "))
        for line in lines:
            console.print(line, soft_wrap=True)
    console.print(
        f"Try: immunorehab participant list --db sqlite:///{result.db_path} --user coord", soft_wrap=True
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
