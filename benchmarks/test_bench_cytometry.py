"""Cytometry benchmark (issue 4): read + compensate + logicle + a whole gating tree on a 1,000,000-event FCS
file, ours and FlowKit 1.3.2 side by side in one run, on the same file and the same Gating-ML.

Two cases:

* ``tcell-memory``: the shipped template (``load_template("tcell-memory")``, 23 populations) on a file from
  the project's panel simulator (12 fluorochromes + FSC-A/FSC-H/SSC-A/Time = 16 channels, $SPILLOVER);
* ``tree25``: a 14-channel file and a 25-population tree of the same structure that also uses Gating-ML
  quadrant and Boolean gates (``_cytometry_bench_data.py``).

FlowKit gets the strategy as Gating-ML (our export of the template, validated against the XSDs), so both do
the same work; the counts of every population must be identical. Our time includes the file's SHA-256
(provenance), which FlowKit does not compute. Peak memory of our pipeline is measured in a fresh process
(tracemalloc, which sees numpy's allocations) and compared with the raw event matrix (n_events x n_channels
x 8 bytes). Run with ``make bench``; the table is in benchmarks/README.md.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _cytometry_bench_data as bench_data
import numpy as np
import pytest

from immunorehab.cytometry import GatingResults, GatingStrategy, read_fcs

fk = pytest.importorskip("flowkit", reason="FlowKit is the yardstick (pip install -e '.[bench]')")

N_EVENTS = 1_000_000
MAX_RATIO = 0.10  # issue 4: at most 1/10 of FlowKit's time
MAX_MEMORY = 3.0  # issue 4: peak memory at most 3x the raw event matrix
FLOWKIT_MEDIANS: dict[str, float] = {}


@dataclass
class Case:
    name: str
    fcs: Path
    strategy_xml: Path
    strategy: GatingStrategy
    flowkit_strategy: Any


def _tcell_memory(folder: Path) -> Case:
    try:
        from immunorehab.cytometry.template import load_template
        from immunorehab.simulate.fcs import simulate_panel_sample
    except ImportError as exc:  # pragma: no cover - the template lands with the pipeline
        pytest.skip(f"tcell-memory template or panel simulator not available: {exc}")
    fcs = folder / "tcell_memory_1M.fcs"
    simulate_panel_sample(N_EVENTS, rng=np.random.default_rng(20261123), path=fcs)
    strategy = load_template("tcell-memory")
    xml = strategy.to_gatingml(folder / "tcell_memory.xml")
    return Case("tcell-memory", fcs, xml, strategy, fk.parse_gating_xml(str(xml)))


def _tree25(folder: Path) -> Case:
    fcs = bench_data.write_fcs(folder / "tree25_1M.fcs", n=N_EVENTS)
    xml = folder / "tree25.xml"
    xml.write_text(bench_data.gatingml())
    strategy = GatingStrategy.from_gatingml(xml)
    return Case("tree25", fcs, xml, strategy, fk.parse_gating_xml(str(xml)))


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    folder = tmp_path_factory.mktemp("cytometry-bench")
    return {"tcell-memory": _tcell_memory(folder), "tree25": _tree25(folder)}


def run_ours(case: Case) -> GatingResults:
    sample = read_fcs(case.fcs)
    results = case.strategy.gate(sample)
    assert len(sample.sha256) == 64  # provenance hash: part of our work
    return results


def run_flowkit(case: Case) -> Any:
    return case.flowkit_strategy.gate_sample(fk.Sample(str(case.fcs)))


PEAK_SCRIPT = """
import json, sys, tracemalloc
from immunorehab.cytometry import GatingStrategy, read_fcs
strategy = GatingStrategy.from_gatingml(sys.argv[2])
tracemalloc.start()
sample = read_fcs(sys.argv[1])
results = strategy.gate(sample)
digest = sample.sha256
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"peak": peak, "raw": sample.n_events * len(sample.channels) * 8}))
"""


def peak_memory(case: Case) -> dict[str, float]:
    """Peak traced memory of read + gate in a fresh process, in bytes and as a multiple of the raw matrix."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(case.fcs), str(case.strategy_xml)],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {"peak_mb": data["peak"] / 1e6, "raw_mb": data["raw"] / 1e6, "ratio": data["peak"] / data["raw"]}


@pytest.mark.parametrize("name", ["tcell-memory", "tree25"])
def test_flowkit(benchmark: Any, cases: dict[str, Case], name: str) -> None:
    case = cases[name]
    benchmark.group = f"cytometry {name}: 1M events"
    result = benchmark.pedantic(run_flowkit, args=(case,), rounds=3, iterations=1)
    FLOWKIT_MEDIANS[name] = statistics.median(benchmark.stats.stats.data)
    ours = run_ours(case)
    report = result.report
    assert len(report) == len(ours.gate_ids)
    for _, row in report.iterrows():
        assert ours.count(row["gate_name"]) == row["count"], row["gate_name"]


@pytest.mark.parametrize("name", ["tcell-memory", "tree25"])
def test_ours(benchmark: Any, cases: dict[str, Case], name: str) -> None:
    case = cases[name]
    benchmark.group = f"cytometry {name}: 1M events"
    run_ours(case)  # warm-up outside the timing: XSD, logicle tables (once per process)
    benchmark.pedantic(run_ours, args=(case,), rounds=7, iterations=1)
    ours = statistics.median(benchmark.stats.stats.data)
    memory = peak_memory(case)
    benchmark.extra_info.update({f"memory_{k}": round(v, 2) for k, v in memory.items()})
    if name in FLOWKIT_MEDIANS:
        ratio = ours / FLOWKIT_MEDIANS[name]
        benchmark.extra_info.update({"flowkit_median_s": FLOWKIT_MEDIANS[name], "ratio_to_flowkit": ratio})
        assert ratio <= MAX_RATIO, f"{ours:.3f} s is {ratio:.3f} of FlowKit's {FLOWKIT_MEDIANS[name]:.2f} s"
    assert memory["ratio"] <= MAX_MEMORY, memory
