"""Demo step: the study report, unblinded for the statistician and blinded (pooled) for the assessor.

Runs after every other step, so the report shows the demo's whole chain: CONSORT flow from
the store, baseline table, adherence and adverse events from the rehab log, the prespecified
analysis of visit measures, gated subsets and cytokines, and the provenance of every FCS
file and plate. The demo owns its output folder, so earlier reports there are replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from immunorehab.report.service import build_report

if TYPE_CHECKING:
    from immunorehab.study.demo import DemoContext

__all__ = ["demo_report"]


def demo_report(ctx: DemoContext) -> list[str]:
    """Build both reports into ``report/`` and ``report-blinded/``; return lines to print."""
    lines = []
    for user, folder in (("stats1", "report"), ("assessor1", "report-blinded")):
        result = build_report(
            ctx.store,
            by=user,
            out=ctx.out / folder,
            overwrite=True,
            today=ctx.today,
            on_progress=ctx.on_progress,
        )
        what = f"{result.mode} for {user} ({result.role}): {result.pages} PDF pages in {result.seconds:.1f} s"
        lines.append(f"{what} -> {result.out / 'report.html'} and report.pdf")
    db = f"sqlite:///{ctx.out / 'demo.db'}"
    lines.append(f"Try: immunorehab report --db {db} --user coord --out {ctx.out / 'report-coord'}")
    return lines
