"""Benchmark input for the cytometry benchmark: a 1,000,000-event, 14-channel FCS file and a tcell-memory-like
Gating-ML tree (25 gates: scatter/singlet polygons, ranges, CCR7 x CD45RA quadrants, rectangles, booleans).

Generated here (seeded) so that the benchmark does not depend on other modules; the tree mirrors the issue's
tcell-memory template (item 4) on this file's channel names.
"""

from __future__ import annotations

from pathlib import Path

import flowio
import numpy as np

SCATTER = ["FSC-A", "FSC-H", "SSC-A"]
FLUOR = ["Viab-A", "CD3-A", "CD4-A", "CD8-A", "CCR7-A", "CD45RA-A", "HLADR-A", "CD38-A", "CD56-A", "CD16-A"]
CHANNELS = SCATTER + FLUOR + ["Time"]  # 14 channels


def spillover_matrix(rng: np.random.Generator) -> np.ndarray:
    n = len(FLUOR)
    s = np.eye(n)
    for i in range(n):
        for j in (i - 1, i + 1, i + 2):
            if 0 <= j < n:
                s[i, j] = rng.uniform(0.01, 0.15)
    return s


def simulate_events(n: int, rng: np.random.Generator, spill: np.ndarray) -> np.ndarray:
    """Scatter/doublets/dead cells plus T (CD4/CD8 memory subsets), NK and other lymphocytes."""
    kind = rng.choice(3, size=n, p=[0.55, 0.15, 0.30])  # lymph, mono, granulocyte/debris
    fsc = np.choose(kind, [rng.normal(60e3, 8e3, n), rng.normal(95e3, 10e3, n), rng.normal(120e3, 20e3, n)])
    ssc = np.choose(kind, [rng.normal(20e3, 5e3, n), rng.normal(60e3, 10e3, n), rng.normal(140e3, 25e3, n)])
    doublet = rng.random(n) < 0.05
    fsc_h = fsc * np.where(doublet, 0.55, 0.85) * rng.normal(1.0, 0.03, n)
    true = np.abs(rng.normal(0, 150, (n, len(FLUOR))))
    pos = lambda p: rng.random(n) < p  # noqa: E731
    lin = rng.choice(3, size=n, p=[0.7, 0.15, 0.15])  # T, NK, other
    t, nk = (kind == 0) & (lin == 0), (kind == 0) & (lin == 1)
    true[:, 0] += np.where(pos(0.1), rng.lognormal(9, 0.4, n), 0)  # dead cells bright
    true[:, 1] += np.where(t, rng.lognormal(9.3, 0.3, n), 0)
    cd4 = t & pos(0.62)
    true[:, 2] += np.where(cd4, rng.lognormal(8.8, 0.3, n), 0)
    true[:, 3] += np.where(t & ~cd4, rng.lognormal(9.5, 0.3, n), 0)
    for k, p in ((4, 0.55), (5, 0.5), (6, 0.1), (7, 0.2)):
        true[:, k] += np.where(t & pos(p), rng.lognormal(8.5, 0.35, n), 0)
    true[:, 8] += np.where(nk, rng.lognormal(np.where(pos(0.1), 9.8, 8.6), 0.3, n), 0)
    true[:, 9] += np.where(nk & pos(0.85), rng.lognormal(9.2, 0.3, n), 0)
    observed = true @ spill + rng.normal(0, 40, (n, len(FLUOR)))
    time = np.sort(rng.uniform(0, 60_000, n))
    return np.column_stack([fsc, fsc_h, ssc, observed, time]).astype(np.float32)


def write_fcs(path: Path, n: int = 1_000_000, seed: int = 20261123) -> Path:
    rng = np.random.default_rng(seed)
    spill = spillover_matrix(rng)
    events = simulate_events(n, rng, spill)
    spill_text = ",".join([str(len(FLUOR)), *FLUOR, *(f"{v:.6g}" for v in spill.ravel())])
    meta = {"spillover": spill_text}
    with open(path, "wb") as fh:
        flowio.create_fcs(fh, events.ravel(), CHANNELS, metadata_dict=meta)
    return path


def _dim(name: str, comp: str = "FCS", xform: str | None = "L") -> str:
    x = f' gating:transformation-ref="{xform}"' if xform else ""
    return f'gating:compensation-ref="{comp}"{x}><data-type:fcs-dimension data-type:name="{name}"/>'


def _rect(gid: str, parent: str | None, dims: list[tuple[str, float | None, float | None, bool]]) -> str:
    par = f' gating:parent_id="{parent}"' if parent else ""
    out = [f'<gating:RectangleGate gating:id="{gid}"{par}>']
    for name, lo, hi, fluor in dims:
        b = (f' gating:min="{lo}"' if lo is not None else "") + (
            f' gating:max="{hi}"' if hi is not None else ""
        )
        d = _dim(name) if fluor else _dim(name, "uncompensated", None)
        out.append(f"<gating:dimension{b} {d}</gating:dimension>")
    return "".join(out) + "</gating:RectangleGate>"


def _poly(gid: str, parent: str | None, x: str, y: str, verts: list[tuple[float, float]]) -> str:
    par = f' gating:parent_id="{parent}"' if parent else ""
    out = [f'<gating:PolygonGate gating:id="{gid}"{par}>']
    for name in (x, y):
        out.append(f"<gating:dimension {_dim(name, 'uncompensated', None)}</gating:dimension>")
    for vx, vy in verts:
        out.append(
            f'<gating:vertex><gating:coordinate data-type:value="{vx}"/>'
            f'<gating:coordinate data-type:value="{vy}"/></gating:vertex>'
        )
    return "".join(out) + "</gating:PolygonGate>"


def _quad(prefix: str, parent: str, cut_x: float, cut_y: float) -> str:
    out = [f'<gating:QuadrantGate gating:id="{prefix}_ccr7_cd45ra" gating:parent_id="{parent}">']
    for did, name, cut in (("X" + prefix, "CCR7-A", cut_x), ("Y" + prefix, "CD45RA-A", cut_y)):
        out.append(
            f'<gating:divider gating:id="{did}" {_dim(name)}'
            f"<gating:value>{cut}</gating:value></gating:divider>"
        )
    for qid, lx, ly in (("naive", 0.9, 0.9), ("cm", 0.9, 0.1), ("em", 0.1, 0.1), ("temra", 0.1, 0.9)):
        out.append(
            f'<gating:Quadrant gating:id="{prefix}_{qid}">'
            f'<gating:position gating:divider_ref="X{prefix}" gating:location="{lx}"/>'
            f'<gating:position gating:divider_ref="Y{prefix}" gating:location="{ly}"/></gating:Quadrant>'
        )
    return "".join(out) + "</gating:QuadrantGate>"


def _bool(gid: str, parent: str | None, op: str, refs: list[tuple[str, bool]]) -> str:
    par = f' gating:parent_id="{parent}"' if parent else ""
    r = "".join(
        f'<gating:gateReference gating:ref="{g}"' + (' gating:use-as-complement="true"' if c else "") + "/>"
        for g, c in refs
    )
    return f'<gating:BooleanGate gating:id="{gid}"{par}><gating:{op}>{r}</gating:{op}></gating:BooleanGate>'


def gatingml() -> str:
    """The benchmark tree: 25 populations, the tcell-memory structure on this file's channels."""
    pos = 0.45  # logicle threshold between negative and positive populations
    gates = [
        _rect(
            "qc",
            None,
            [("FSC-A", 5000, 250000, False), ("SSC-A", 1000, 250000, False), ("Time", 0, 60000, False)],
        ),
        _poly(
            "lymphocytes",
            "qc",
            "FSC-A",
            "SSC-A",
            [(35e3, 5e3), (85e3, 5e3), (90e3, 38e3), (60e3, 45e3), (35e3, 35e3)],
        ),
        _poly(
            "singlets",
            "lymphocytes",
            "FSC-A",
            "FSC-H",
            [(20e3, 15e3), (120e3, 90e3), (120e3, 115e3), (20e3, 25e3)],
        ),
        _rect("live", "singlets", [("Viab-A", None, 0.55, True)]),
        _rect("t_cells", "live", [("CD3-A", pos, None, True)]),
        _rect("cd4", "t_cells", [("CD4-A", pos, None, True), ("CD8-A", None, pos, True)]),
        _rect("cd8", "t_cells", [("CD8-A", pos, None, True), ("CD4-A", None, pos, True)]),
        _quad("cd4", "cd4", pos, pos),
        _quad("cd8", "cd8", pos, pos),
        _rect("cd4_activated", "cd4", [("HLADR-A", pos, None, True), ("CD38-A", pos, None, True)]),
        _rect("cd8_activated", "cd8", [("HLADR-A", pos, None, True), ("CD38-A", pos, None, True)]),
        _rect("nk", "live", [("CD3-A", None, pos, True), ("CD56-A", pos, None, True)]),
        _rect("nk_cd56bright", "nk", [("CD56-A", 0.72, None, True), ("CD16-A", None, pos, True)]),
        _rect("nk_cd56dim", "nk", [("CD56-A", None, 0.72, True), ("CD16-A", pos, None, True)]),
        _bool("cd4_memory", "cd4", "or", [("cd4_cm", False), ("cd4_em", False)]),
        _bool("cd8_memory", "cd8", "or", [("cd8_cm", False), ("cd8_em", False)]),
        _bool("cd4_resting", "cd4", "not", [("cd4_activated", False)]),
        _bool("cd4_naive_resting", "cd4", "and", [("cd4_naive", False), ("cd4_activated", True)]),
        _bool("cd8_non_naive", "cd8", "not", [("cd8_naive", False)]),
    ]
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML '
        'xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
        'xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations" '
        'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">'
        '<transforms:transformation transforms:id="L">'
        '<transforms:logicle transforms:T="262144" transforms:W="0.5" transforms:M="4.5" transforms:A="0"/>'
        "</transforms:transformation>"
    )
    return head + "".join(gates) + "</gating:Gating-ML>\n"
