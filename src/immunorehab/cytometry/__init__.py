"""Flow cytometry: FCS files to gated T-cell and NK subsets.

Core (reading, compensation, transforms, gates, gating engine, Gating-ML 2.0, FlowJo workspaces)::

    from immunorehab.cytometry import read_fcs, GatingStrategy
    sample = read_fcs("tube1.fcs")
    strategy = GatingStrategy.from_gatingml("tcell-memory.xml")
    results = strategy.gate(sample)
    results.counts()          # gate, parent, count, pct_parent, pct_total
"""

from .compensation import Spillover, compensate
from .engine import EventValues
from .gates import (
    BooleanGate,
    Dimension,
    Divider,
    EllipsoidGate,
    Gate,
    PolygonGate,
    Quadrant,
    QuadrantGate,
    RectangleGate,
)
from .io_fcs import DataOffsetFix, count_datasets, read_fcs
from .results import GatingResults
from .sample import Sample
from .strategy import GatingStrategy
from .transforms import (
    AsinhTransform,
    FlowJoBiexTransform,
    HyperlogTransform,
    LinearTransform,
    LogicleTransform,
    LogTransform,
    RatioTransform,
    Transform,
)

__all__ = [
    "AsinhTransform",
    "BooleanGate",
    "DataOffsetFix",
    "Dimension",
    "Divider",
    "EllipsoidGate",
    "EventValues",
    "FlowJoBiexTransform",
    "Gate",
    "GatingResults",
    "GatingStrategy",
    "HyperlogTransform",
    "LinearTransform",
    "LogTransform",
    "LogicleTransform",
    "PolygonGate",
    "Quadrant",
    "QuadrantGate",
    "RatioTransform",
    "RectangleGate",
    "Sample",
    "Spillover",
    "Transform",
    "compensate",
    "count_datasets",
    "read_fcs",
]

# -- panel pipeline (templates, auto-placement, results, exports, batches) ------------------------
from .absolute import DualPlatform, SinglePlatform  # noqa: E402
from .autogate import AutoGateSettings, GateMove, Placement, place_gates  # noqa: E402
from .batch import BatchReport, run_batch  # noqa: E402
from .manifest import Manifest, ManifestRow, read_manifest  # noqa: E402
from .panel import Panel  # noqa: E402
from .pipeline import GateOptions, SampleAnalysis, analyse_sample  # noqa: E402
from .qc import QcFlag, QcSettings  # noqa: E402
from .template import load_template  # noqa: E402

__all__ += [
    "AutoGateSettings",
    "BatchReport",
    "DualPlatform",
    "GateMove",
    "GateOptions",
    "Manifest",
    "ManifestRow",
    "Panel",
    "Placement",
    "QcFlag",
    "QcSettings",
    "SampleAnalysis",
    "SinglePlatform",
    "analyse_sample",
    "load_template",
    "place_gates",
    "read_manifest",
    "run_batch",
]
