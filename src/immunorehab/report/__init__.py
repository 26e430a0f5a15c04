"""immunorehab.report: the study report (self-contained HTML and an A4 PDF) from the store and the analysis.

:func:`build_report` writes ``report.html``, ``report.pdf``, ``provenance.json``, ``results.csv`` and
``descriptives.csv`` into a folder, atomically. The report renders
:class:`~immunorehab.analysis.study.StudyAnalysis` and store facts (CONSORT counts, baseline
characteristics, adherence and adverse events, file hashes, chain checks); it estimates nothing
itself. Only ``statistician`` and ``admin`` get the unblinded report; every other role gets the
blinded report with all arms pooled, which is searched for arm names before it is written.
"""

from immunorehab.report.service import REPORT_FILES, ReportResult, build_report, render_report

__all__ = ["REPORT_FILES", "ReportResult", "build_report", "render_report"]
