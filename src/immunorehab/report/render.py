"""HTML (jinja2, CSS inlined, figures as data URIs) and PDF (WeasyPrint) of the report."""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

from jinja2 import Environment, StrictUndefined, select_autoescape

from immunorehab.report.content import ReportContent
from immunorehab.report.tables import Table

__all__ = ["render_html", "write_pdf"]


def _template_text(name: str) -> str:
    return (resources.files("immunorehab.report") / "templates" / name).read_text(encoding="utf-8")


def render_html(content: ReportContent) -> str:
    """The report as one self-contained HTML document (opens offline: no external resource)."""
    env = Environment(
        autoescape=select_autoescape(["html"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.from_string(_template_text("report.html"))
    facts = content.facts
    return template.render(
        content=content,
        facts=facts,
        css=_template_text("report.css"),
        header_left=_css_string(f"{facts.slug} · study report · data as of {facts.today.isoformat()}"),
        header_right=_mode_header(content),
        column_widths=column_widths,
    )


def _mode_header(content: ReportContent) -> str:
    if content.facts.design == "cohort":
        return "COHORT: NO ALLOCATION"
    return "BLINDED: ARMS POOLED" if content.facts.blinded else "UNBLINDED: BY ARM"


def column_widths(table: Table) -> list[str]:
    """CSS widths of a table's columns (fixed layout renders much faster in WeasyPrint).

    The table's own ``widths`` when given; else the label column takes a share that shrinks
    with the number of data columns and the rest split the remainder evenly.
    """
    if table.widths:
        return list(table.widths)
    n = len(table.columns)
    first = 40.0 if n <= 3 else 30.0 if n <= 5 else 22.0
    rest = (100.0 - first) / max(1, n)
    return [f"{first:.1f}%"] + [f"{rest:.1f}%"] * n


def _css_string(text: str) -> str:
    """``text`` safe inside a double-quoted CSS string (backslash-escaped code points)."""
    return "".join(ch if ch.isalnum() or ch in " .-_:/·" else f"\\{ord(ch):06x}" for ch in text)


def write_pdf(html: str, path: Path) -> int:
    """Render ``html`` to an A4 PDF at ``path`` with WeasyPrint; return the number of pages."""
    with warnings.catch_warnings():
        # WeasyPrint notes at import when the system lacks libharfbuzz-subset (fonts are then embedded
        # whole): a packaging notice, not a problem with the report.
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        from weasyprint import HTML

        document = HTML(string=html).render()
        document.write_pdf(str(path))
        return len(document.pages)
