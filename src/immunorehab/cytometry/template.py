"""Panel templates: shipped Gating-ML strategies whose dimensions are markers, mapped by a panel.

``load_template("tcell-memory", panel=PATH)`` reads the shipped Gating-ML
(``cytometry/data/tcell-memory.xml``), replaces each marker name (``CD3``) by the channel
the panel maps it to (``BUV395-A``) and returns a :class:`GatingStrategy`. Without a
panel the shipped default panel (``tcell-memory.panel.csv``, the layout of
:mod:`immunorehab.simulate.fcs`) is used. ``load_template(PATH.xml)`` reads any Gating-ML
file instead (e.g. a template a lab edited to fix a gate); a panel is then optional.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from immunorehab.errors import PanelError, TemplateError

from .panel import Panel, missing_channels_message

if TYPE_CHECKING:
    from .gates import Dimension, Gate
    from .sample import Sample
    from .strategy import GatingStrategy

__all__ = [
    "TEMPLATES",
    "default_panel",
    "load_template",
    "apply_panel",
    "check_sample_channels",
    "strategy_channels",
    "template_path",
]

#: Shipped templates: name -> (Gating-ML file, default panel file) in ``cytometry/data``.
TEMPLATES: dict[str, tuple[str, str]] = {"tcell-memory": ("tcell-memory.xml", "tcell-memory.panel.csv")}


def _data(name: str) -> Path:
    return Path(str(resources.files("immunorehab.cytometry") / "data" / name))


def template_path(name: str) -> Path:
    """The Gating-ML file of a shipped template, or ``name`` itself when it is a file path.

    Raises
    ------
    TemplateError
        ``name`` is neither a shipped template nor an existing file.
    """
    if name in TEMPLATES:
        return _data(TEMPLATES[name][0])
    path = Path(name)
    if path.is_file():
        return path
    raise TemplateError(
        f"template {name!r} is neither a shipped template ({', '.join(TEMPLATES)}) nor a Gating-ML file "
        "that exists"
    )


def default_panel(name: str) -> Panel | None:
    """The shipped default panel of a template (None for a Gating-ML file path)."""
    if name not in TEMPLATES:
        return None
    return Panel.from_csv(_data(TEMPLATES[name][1]))


def _rename(dim: Dimension, mapping: Mapping[str, str]) -> Dimension:
    if dim.kind != "fcs" or dim.channel not in mapping:
        return dim
    return dataclasses.replace(dim, channel=mapping[dim.channel])


def _renamed_gate(gate: Gate, mapping: Mapping[str, str]) -> Gate:
    dims = gate.dimensions
    if not dims:
        return gate
    return dataclasses.replace(gate, dimensions=tuple(_rename(d, mapping) for d in dims))  # type: ignore[arg-type]


def apply_panel(strategy: GatingStrategy, panel: Panel) -> GatingStrategy:
    """A new strategy whose dimensions named after a panel marker use that marker's channel."""
    from .strategy import GatingStrategy

    mapping = panel.mapping
    gates = [_renamed_gate(g, mapping) for g in strategy.gates]
    return GatingStrategy(gates, strategy.transforms, strategy.spillovers)


def load_template(
    name: str | Path = "tcell-memory", *, panel: str | Path | Panel | None = None
) -> GatingStrategy:
    """A gating strategy from a shipped template or a Gating-ML file, mapped through a panel.

    Parameters
    ----------
    name : str or Path
        ``"tcell-memory"`` or the path of a Gating-ML 2.0 file (e.g. an edited template).
    panel : path, Panel or None
        Panel CSV (``marker,channel``) or a :class:`Panel`; None uses the template's
        default panel (none for a Gating-ML path: names are used as written).

    Raises
    ------
    TemplateError
        Unknown template name.
    PanelError
        Invalid panel file.
    GatingMLError
        Invalid Gating-ML.
    """
    from .strategy import GatingStrategy

    key = str(name)
    strategy = GatingStrategy.from_gatingml(template_path(key))
    chosen = (
        panel
        if isinstance(panel, Panel)
        else Panel.from_csv(panel)
        if panel is not None
        else default_panel(key)
    )
    return apply_panel(strategy, chosen) if chosen is not None else strategy


def strategy_channels(strategy: GatingStrategy) -> tuple[str, ...]:
    """The file channels a strategy's gates read (ratio dimensions resolved to their channels)."""
    from .transforms import RatioTransform

    names: dict[str, None] = {}
    for dim in strategy.dimensions_used():
        if dim.kind == "ratio":
            ratio = strategy.transforms[dim.channel]
            assert isinstance(ratio, RatioTransform)
            names.setdefault(ratio.numerator, None)
            names.setdefault(ratio.denominator, None)
        else:
            names.setdefault(dim.channel, None)
    return tuple(names)


def check_sample_channels(strategy: GatingStrategy, sample: Sample, panel: Panel | None) -> None:
    """Raise :class:`PanelError` when a channel the strategy needs is not in ``sample``.

    The message names each missing marker (as the panel calls it), the channel it maps to,
    the file, and the channels the file has.
    """
    by_channel = {c: m for m, c in panel.entries} if panel is not None else {}
    needed = {by_channel.get(c, c): c for c in strategy_channels(strategy)}
    where = str(sample.path) if sample.path is not None else sample.name
    message = missing_channels_message(
        needed=needed,
        channels=sample.channels,
        markers=sample.markers,
        file=where,
        panel_source=panel.source if panel is not None else None,
    )
    if message is not None:
        raise PanelError(message)
