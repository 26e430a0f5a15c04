"""Drawing the participant flow (CONSORT for trials, STROBE-like for cohorts) with matplotlib.

Boxes are black outlines on white with black text (greyscale-safe), 8 pt text wrapped to the
box, sized for an A4 page (7 in wide). The layout is computed first (box heights from their
wrapped lines) and the figure height follows from it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

from immunorehab.report.consort import ArmFlow, CohortFlow, ConsortFlow, Reason  # noqa: E402
from immunorehab.report.embed import print_style  # noqa: E402

__all__ = ["draw_cohort_flow", "draw_consort"]

WIDTH_IN = 7.0
FONT_PT = 8.0
LINE_IN = FONT_PT * 1.28 / 72.0
CHAR_IN = FONT_PT * 0.56 / 72.0
PAD_IN = 0.07
GAP_IN = 0.28
LEFT_IN = 0.42
#: Rows are at least this tall so the rotated stage label fits beside them.
STAGE_MIN_IN = 0.82


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    bold: bool = False
    indent: int = 0


def _wrap(lines: Sequence[_Line], width_in: float) -> list[_Line]:
    out: list[_Line] = []
    for line in lines:
        char_in = CHAR_IN * (1.13 if line.bold else 1.0)
        chars = max(8, int((width_in - 2 * PAD_IN) / char_in) - 2 * line.indent - 1)
        for k, part in enumerate(textwrap.wrap(line.text, chars) or [""]):
            out.append(_Line(part, line.bold, line.indent + (1 if k else 0)))
    return out


def _height(lines: Sequence[_Line]) -> float:
    return len(lines) * LINE_IN + 2 * PAD_IN


def _box(ax: Axes, x: float, top: float, width: float, lines: Sequence[_Line], height: float) -> None:
    ax.add_patch(Rectangle((x, top - height), width, height, fill=False, edgecolor="black", linewidth=0.9))
    y = top - PAD_IN - LINE_IN * 0.78
    for line in lines:
        ax.text(
            x + PAD_IN + line.indent * 2.2 * CHAR_IN,
            y,
            line.text,
            fontsize=FONT_PT,
            fontweight="bold" if line.bold else "normal",
            color="black",
            va="baseline",
        )
        y -= LINE_IN


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color="black", linewidth=0.9)
    )


def _stage(ax: Axes, label: str, top: float, bottom: float) -> None:
    ax.add_patch(
        Rectangle((0.02, bottom), 0.26, top - bottom, facecolor="0.88", edgecolor="0.4", linewidth=0.6)
    )
    ax.text(
        0.15,
        (top + bottom) / 2,
        label,
        rotation=90,
        ha="center",
        va="center",
        fontsize=FONT_PT + 0.5,
        fontweight="bold",
    )


def _reason_lines(reason: Reason, *, bold: bool = False, indent: int = 0) -> list[_Line]:
    lines = [_Line(f"{reason.label} (n={reason.n})", bold, indent)]
    for sub in reason.sub:
        lines += _reason_lines(sub, indent=indent + 1)
    return lines


def _allocation_lines(arm: ArmFlow, blinded: bool) -> list[_Line]:
    head = "Allocated (all arms pooled)" if blinded else f"Allocated to {arm.label}"
    lines = [_Line(f"{head} (n={arm.allocated})", True)]
    if arm.received is not None:
        lines.append(_Line(f"Received allocated intervention (n={arm.received})"))
        missed = arm.not_received or ()
        lines.append(_Line(f"Did not receive allocated intervention (n={sum(r.n for r in missed)})"))
        lines += [_Line(f"{r.label} (n={r.n})", indent=1) for r in missed]
    elif arm.intervention_note:
        lines.append(_Line(arm.intervention_note))
    elif blinded:
        lines.append(_Line("Intervention received: not shown in the blinded report"))
    return lines


def _follow_lines(arm: ArmFlow, visit_label: str) -> list[_Line]:
    lines = _reason_lines(arm.lost, bold=True) + _reason_lines(arm.withdrawn, bold=True)
    if arm.discontinued is not None:
        lines += _reason_lines(arm.discontinued, bold=True)
    lines.append(_Line(f"{visit_label} not yet due (n={arm.pending})", True))
    return lines


def _analysis_lines(arm: ArmFlow) -> list[_Line]:
    if not arm.analysed:
        return [_Line("Analysed", True), _Line("no analysis population declared")]
    return [_Line("Analysed", True)] + [_Line(f"{pop} (n={n})") for pop, n in arm.analysed]


def _new_figure(height: float) -> tuple[Figure, Axes]:
    with print_style():
        fig = plt.figure(figsize=(WIDTH_IN, height))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, WIDTH_IN)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def draw_consort(flow: ConsortFlow) -> Figure:
    """The CONSORT 2025 flow diagram of ``flow`` (one column per arm, or one pooled column)."""
    content = WIDTH_IN - LEFT_IN - 0.05
    centre = LEFT_IN + content / 2
    top_w = 2.6
    excl_w = min(3.0, content / 2 - 0.25)
    assessed = _wrap([_Line(f"Assessed for eligibility (n={flow.assessed})", True)], top_w)
    excluded = _wrap(_reason_lines(flow.excluded, bold=True), excl_w)
    rand = _wrap([_Line(f"Randomised (n={flow.randomised})", True)], top_w)
    k = len(flow.arms)
    col_w = min(3.4, (content - (k - 1) * 0.15) / k)
    xs = [centre - (k * col_w + (k - 1) * 0.15) / 2 + i * (col_w + 0.15) for i in range(k)]
    label = flow.primary_visit_label
    rows = [
        [_wrap(_allocation_lines(a, flow.blinded), col_w) for a in flow.arms],
        [_wrap(_follow_lines(a, label), col_w) for a in flow.arms],
        [_wrap(_analysis_lines(a), col_w) for a in flow.arms],
    ]
    row_h = [max(STAGE_MIN_IN, *(_height(b) for b in row)) for row in rows]
    ex_h, a_h, r_h = _height(excluded), _height(assessed), _height(rand)
    gap_enrol = max(ex_h + 2 * 0.12, 0.45)
    total = 0.1 + a_h + gap_enrol + r_h + GAP_IN + 0.1 + sum(row_h) + GAP_IN * 2 + 0.15
    fig, ax = _new_figure(total)
    y = total - 0.1
    enrol_top = y
    _box(ax, centre - top_w / 2, y, top_w, assessed, a_h)
    y -= a_h
    mid = y - gap_enrol / 2
    _box(ax, centre + 0.25, mid + ex_h / 2, excl_w, excluded, ex_h)
    ax.plot([centre, centre], [y, mid], color="black", linewidth=0.9)
    _arrow(ax, (centre, mid), (centre + 0.25, mid))
    _arrow(ax, (centre, mid), (centre, y - gap_enrol))
    y -= gap_enrol
    _box(ax, centre - top_w / 2, y, top_w, rand, r_h)
    y -= r_h
    _stage(ax, "Enrolment", enrol_top, y - 0.02)
    branch = y - GAP_IN / 2
    ax.plot([centre, centre], [y, branch], color="black", linewidth=0.9)
    ax.plot([xs[0] + col_w / 2, xs[-1] + col_w / 2], [branch, branch], color="black", linewidth=0.9)
    y -= GAP_IN + 0.1
    for x in xs:
        _arrow(ax, (x + col_w / 2, branch), (x + col_w / 2, y))
    for stage, row, h in zip(("Allocation", "Follow-up", "Analysis"), rows, row_h, strict=True):
        for x, lines in zip(xs, row, strict=True):
            _box(ax, x, y, col_w, lines, h)
        _stage(ax, stage, y, y - h)
        if stage != "Analysis":
            for x in xs:
                _arrow(ax, (x + col_w / 2, y - h), (x + col_w / 2, y - h - GAP_IN))
        y -= h + GAP_IN
    return fig


def draw_cohort_flow(flow: CohortFlow) -> Figure:
    """A STROBE-like participant flow of a cohort: screened, excluded, included, then each visit."""
    content = WIDTH_IN - LEFT_IN - 0.05
    main_w = 3.0
    x = LEFT_IN + 0.1
    excl_x = x + main_w + 0.3
    excl_w = min(3.0, LEFT_IN + content - excl_x)
    screened = _wrap([_Line(f"Screened for the cohort (n={flow.assessed})", True)], main_w)
    excluded = _wrap(_reason_lines(flow.excluded, bold=True), excl_w)
    included = _wrap([_Line(f"Included in the cohort (n={flow.included})", True)], main_w)
    boxes = []
    for v in flow.visits:
        lines = [
            _Line(v.label, True),
            _Line(f"Attended (n={v.attended})"),
            _Line(f"Missed, window closed (n={v.missed})"),
            _Line(f"Not yet due (n={v.pending})"),
            _Line(f"Withdrawn (n={v.withdrawn})"),
        ]
        if v.analysed is not None:
            lines.append(_Line(f"With data analysed (n={v.analysed})"))
        boxes.append(_wrap(lines, main_w))
    ex_h = _height(excluded)
    gap_enrol = max(ex_h + 0.24, 0.45)
    heights = [_height(b) for b in boxes]
    total = 0.1 + _height(screened) + gap_enrol + _height(included) + sum(h + GAP_IN for h in heights) + 0.1
    fig, ax = _new_figure(total)
    y = total - 0.1
    _box(ax, x, y, main_w, screened, _height(screened))
    y -= _height(screened)
    mid = y - gap_enrol / 2
    centre = x + main_w / 2
    _box(ax, excl_x, mid + ex_h / 2, excl_w, excluded, ex_h)
    ax.plot([centre, centre], [y, mid], color="black", linewidth=0.9)
    _arrow(ax, (centre, mid), (excl_x, mid))
    _arrow(ax, (centre, mid), (centre, y - gap_enrol))
    y -= gap_enrol
    _box(ax, x, y, main_w, included, _height(included))
    _stage(ax, "Enrolment", total - 0.1, y - _height(included))
    y -= _height(included)
    follow_top = y
    for lines, h in zip(boxes, heights, strict=True):
        _arrow(ax, (centre, y), (centre, y - GAP_IN))
        y -= GAP_IN
        _box(ax, x, y, main_w, lines, h)
        y -= h
    if boxes:
        _stage(ax, "Follow-up", follow_top - GAP_IN, y)
    return fig
