"""The study report on a trial built through the real store APIs, for every role.

The trial is enrolled, randomised and followed with ``record_visit``; gated subsets are stored
through the cytometry service, cytokine plates simulated, read, fitted and imported by the
cytokine capability, rehabilitation prescribed and logged by the rehab capability; the study
analysis is the real :func:`run_study_analysis`. Every role's report is built; blinded ones are
searched (HTML, the text inside every embedded figure, the PDF's text, the CSV files and the
file names) for any arm id or label.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader
from study_analysis_helpers import (
    TODAY,
    Trial,
    build_trial,
    gate_values,
    import_cytokines,
    prescribe_and_log,
    store_gates,
    write_protocol,
)

from factories import person
from immunorehab.analysis.study import StudyAnalysis, run_study_analysis
from immunorehab.cli.main import run
from immunorehab.errors import ReportError
from immunorehab.report import service
from immunorehab.report.blinding import visible_text
from immunorehab.report.outcomes import fmt_estimate, outcome_decimals
from immunorehab.report.service import ReportResult, build_report
from immunorehab.simulate.plates import simulate_levels
from immunorehab.study.allocation import allocation_balance
from immunorehab.study.participants import add_participant, withdraw_participant
from immunorehab.study.protocol import load_protocol
from immunorehab.study.service import add_user, create_study
from immunorehab.study.store import Store
from testpaths import PHOSP, ROLE_USERS, TWO_ARM

ROLES = {"admin": "admin", **ROLE_USERS}
UNBLINDED = {"admin", "stats1"}
HEADINGS = (
    "1. Participant flow",
    "2. Baseline characteristics",
    "3. Adherence and safety",
    "4. Outcomes",
    "5. Methods",
    "Appendix A. Descriptive statistics",
    "Appendix B. Provenance",
)


def _plan(data: dict[str, Any]) -> None:
    """Small MICE (speed) and one cytokine outcome, so every figure of the report has data."""
    data["analysis"]["imputation"].update(m=5, iterations=5)
    data["analysis"]["families"].append({"id": "cytokines", "label": "Plasma cytokines", "method": "BH"})
    data["analysis"]["outcomes"].append(
        {
            "id": "il6_week8",
            "label": "IL-6 at 8 weeks (pg/mL)",
            "source": {"type": "cytokine", "analyte": "IL-6"},
            "visits": ["week8"],
            "role": "exploratory",
            "family": "cytokines",
            "transform": "log",
        }
    )


@dataclass
class Built:
    store: Store
    url: str
    folder: Path
    trial: Trial
    analyses: dict[bool, StudyAnalysis]
    reports: dict[str, ReportResult] = field(default_factory=dict)

    def report(self, user: str) -> ReportResult:
        """The user's report (built once per module; blinded roles run their own analysis)."""
        if user not in self.reports:
            blinded = user not in UNBLINDED
            analysis = self.analyses[blinded] if user in UNBLINDED or user == "lab1" else None
            self.reports[user] = build_report(
                self.store, by=user, out=self.folder / f"report_{user}", today=TODAY, analysis=analysis
            )
        return self.reports[user]


def _build(store: Store, folder: Path) -> Trial:
    trial = build_trial(store, n=16, rehab=True, missing_week8=(3, 9))
    # screening: one ineligible (too soon after infection), one consented and waiting
    add_participant(store, by="coord", values=person(days_since_infection=30), today=TODAY)
    add_participant(store, by="coord", values=person(), today=TODAY)
    first, second = sorted(trial.arms)[5:7]
    withdraw_participant(store, by="coord", participant_id=first, reason="moved away", on=TODAY)
    # free text may name an arm: blinded reports conceal it instead of refusing to render
    withdraw_participant(
        store, by="coord", participant_id=second, reason="wanted Usual care instead", on=TODAY
    )
    store_gates(store, gate_values(trial, np.random.default_rng(2)))
    prescribe_and_log(store, trial, folder)
    draws = [
        (pid, v) for pid in trial.arms for v in ("baseline", "week8") if v == "baseline" or trial.week8[pid]
    ]
    import_cytokines(store, simulate_levels(draws, rng=np.random.default_rng(5)), folder)
    return trial


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    folder = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{folder / 'study.db'}"
    store, _ = create_study(url, write_protocol(TWO_ARM, folder, _plan), admin="admin", seed=2024)
    for name, role in ROLE_USERS.items():
        add_user(store, by="admin", username=name, role=role)
    trial = _build(store, folder)
    analyses = {
        False: run_study_analysis(store, by="stats1", skip_unavailable=True, today=TODAY),
        True: run_study_analysis(store, by="lab1", skip_unavailable=True, today=TODAY),
    }
    yield Built(store, url, folder, trial, analyses)
    store.dispose()


def _pdf_text(path: Path) -> tuple[str, PdfReader]:
    reader = PdfReader(path)
    return "\n".join(page.extract_text() or "" for page in reader.pages), reader


def _normal(text: str) -> str:
    """Lower case, hyphenation at line ends undone, white space collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"-\s*\n\s*", "-", text)).lower()


def _arm_terms(store: Store, user: str = "admin") -> list[str]:
    from immunorehab.study.service import get_protocol

    with store.read(user) as session:
        protocol = get_protocol(session)
    return [t for a in protocol.arms for t in (a.id, a.label)]


def _leaks(text: str, terms: list[str], title: str) -> list[str]:
    body = _normal(text).replace(_normal(title), " ")
    return [t for t in terms if re.search(rf"(?<![a-z0-9_]){re.escape(t.lower())}(?![a-z0-9_])", body)]


# -- every role ----------------------------------------------------------------------------------


@pytest.mark.parametrize("user", sorted(ROLES))
def test_report_for_every_role(built: Built, user: str) -> None:
    result = built.report(user)
    assert result.blinded is (user not in UNBLINDED)
    assert result.role == ROLES[user]
    names = sorted(p.name for p in result.out.iterdir())
    assert names == sorted(
        ["report.html", "report.pdf", "provenance.json", "results.csv", "descriptives.csv"]
    )
    html = (result.out / "report.html").read_text(encoding="utf-8")
    assert "<link" not in html and "http://" not in html and "https://" not in html  # opens offline
    text, reader = _pdf_text(result.out / "report.pdf")
    assert len(reader.pages) == result.pages >= 8
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    positions = [_normal(text).rfind(h.lower()) for h in HEADINGS]  # after the contents list
    assert all(p >= 0 for p in positions) and positions == sorted(positions), positions
    with built.store.read("admin") as session:
        from immunorehab.study.service import get_protocol

        protocol = get_protocol(session)
    terms = _arm_terms(built.store)
    documents = {
        "html": visible_text(html),
        "pdf": text,
        "provenance.json": (result.out / "provenance.json").read_text(encoding="utf-8"),
        "results.csv": (result.out / "results.csv").read_text(encoding="utf-8"),
        "descriptives.csv": (result.out / "descriptives.csv").read_text(encoding="utf-8"),
        "file names": " ".join(names),
    }
    if result.blinded:
        for name, body in documents.items():
            assert _leaks(body, terms, protocol.study.title) == [], name
        assert "BLINDED: ARMS POOLED" in text
    else:
        for arm in protocol.arms:
            assert arm.label.lower() in _normal(text)
        assert "UNBLINDED: BY ARM" in text and "GMR" in text


def test_free_text_naming_an_arm_is_concealed_in_blinded_reports(built: Built) -> None:
    blinded = visible_text((built.report("coord").out / "report.html").read_text(encoding="utf-8"))
    assert "wanted [arm concealed] instead" in " ".join(blinded.split())
    unblinded = visible_text((built.report("stats1").out / "report.html").read_text(encoding="utf-8"))
    assert "wanted Usual care instead" in " ".join(unblinded.split())


@pytest.mark.parametrize("user", ["lab1", "assessor1"])
def test_roles_that_may_not_read_rehabilitation_get_it_withheld(built: Built, user: str) -> None:
    html = (built.report(user).out / "report.html").read_text(encoding="utf-8")
    assert "Adherence and safety are withheld from this report" in html
    assert "Sessions attended / offered" not in html


def test_coordinator_sees_pooled_adherence(built: Built) -> None:
    html = (built.report("coord").out / "report.html").read_text(encoding="utf-8")
    assert "All prescribed (arms pooled)" in html and "Sessions attended / offered" in html
    assert "Remote sessions attended" not in html


def test_statistician_may_ask_for_the_blinded_report(built: Built, tmp_path: Path) -> None:
    result = build_report(
        built.store,
        by="stats1",
        out=tmp_path / "r",
        blinded=True,
        today=TODAY,
        analysis=built.analyses[True],
        pdf=False,
    )
    assert result.blinded
    html = (result.out / "report.html").read_text(encoding="utf-8")
    with built.store.read("admin") as session:
        from immunorehab.study.service import get_protocol

        title = get_protocol(session).study.title
    assert _leaks(visible_text(html), _arm_terms(built.store), title) == []


# -- the numbers are the store's and the analysis' ------------------------------------------------


def _figure_lines(html: str, key: str) -> str:
    """The text lines of one embedded SVG figure, joined by spaces (wrapped lines rejoined)."""
    import base64
    import html as html_lib

    data = re.search(rf'<figure id="fig-{key}">\s*<img[^>]*src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert data is not None, key
    svg = base64.b64decode(data.group(1)).decode("utf-8")
    lines = [html_lib.unescape(m) for m in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)]
    return re.sub(r"\s+", " ", " ".join(lines))


def test_consort_counts_are_the_stores(built: Built) -> None:
    result = built.report("stats1")
    svg = _figure_lines((result.out / "report.html").read_text(encoding="utf-8"), "consort")
    balance = allocation_balance(built.store, by="stats1")
    n_people = len(built.trial.arms) + 2
    assert f"Assessed for eligibility (n={n_people})" in svg
    assert f"Randomised (n={balance.total})" in svg
    assert "Excluded (n=2)" in svg
    for arm in load_protocol(TWO_ARM).arms:
        assert f"Allocated to {arm.label} (n={balance.overall[arm.id]})" in svg
    analysed = built.analyses[False].methods["analysed"]["itt"]
    for arm, n in analysed.items():
        assert f"ITT (n={n})" in svg, arm
    assert "moved away (n=1)" in svg


def test_outcome_table_renders_the_analysis_numbers(built: Built) -> None:
    html = (built.report("stats1").out / "report.html").read_text(encoding="utf-8")
    results = built.analyses[False].results
    assert not results.empty
    decimals = outcome_decimals(results)
    for _, r in results.iterrows():
        ratio = r["scale"] == "ratio"
        places = decimals.get(r["outcome"])
        text = fmt_estimate(r["estimate"], r["ci_low"], r["ci_high"], ratio=ratio, decimals=places)
        assert text in html, r["outcome"]
    written = pd.read_csv(built.report("stats1").out / "results.csv")
    pd.testing.assert_frame_equal(written, results.reset_index(drop=True), check_dtype=False)


def test_every_raw_file_is_in_the_provenance(built: Built) -> None:
    from sqlalchemy import select

    from immunorehab.cytokines.tables import CytokinePlate
    from immunorehab.cytometry.tables import CytometryFile

    result = built.report("lab1")
    html = (result.out / "report.html").read_text(encoding="utf-8")
    text, _ = _pdf_text(result.out / "report.pdf")
    prov = json.loads((result.out / "provenance.json").read_text(encoding="utf-8"))
    with built.store.read("lab1") as session:
        files = set(session.scalars(select(CytometryFile.file_sha256)))
        plate_hashes = session.execute(
            select(CytokinePlate.readings_sha256, CytokinePlate.plate_map_sha256, CytokinePlate.assay_sha256)
        ).all()
        sha = next(iter(session.execute(select(CytometryFile.strategy_sha256)).scalars()))
    assert files and plate_hashes
    for digest in files:
        assert digest in html and digest in text.replace("\n", "")
    assert files == {r["file_sha256"] for r in prov["fcs_files"]}
    for hashes in plate_hashes:
        assert all(h in html for h in hashes)
    assert sha in html
    assert prov["chains"] == [
        {"name": "audit trail", "ok": True, "checked": prov["chains"][0]["checked"], "problem": None},
        {"name": "allocation chain", "ok": True, "checked": len(built.trial.arms), "problem": None},
    ]
    assert prov["protocol_sha256"] in text.replace("\n", "")


# -- output folder and errors ---------------------------------------------------------------------


def test_existing_folder_is_not_overwritten_silently(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="pass --overwrite"):
        build_report(built.store, by="lab1", out=out, today=TODAY, analysis=built.analyses[True], pdf=False)
    assert (out / "notes.txt").read_text() == "mine"
    build_report(
        built.store, by="lab1", out=out, today=TODAY, analysis=built.analyses[True], pdf=False, overwrite=True
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "descriptives.csv",
        "provenance.json",
        "report.html",
        "results.csv",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # nothing left aside


def test_a_failure_leaves_no_half_report(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(html: str, path: Path) -> int:
        path.write_bytes(b"%PDF-1.7 partial")
        raise OSError("disk full")

    monkeypatch.setattr(service, "write_pdf", broken)
    with pytest.raises(OSError, match="disk full"):
        build_report(
            built.store, by="lab1", out=tmp_path / "report", today=TODAY, analysis=built.analyses[True]
        )
    assert list(tmp_path.iterdir()) == []


def test_no_analysis_section(tmp_path: Path) -> None:
    def drop(data: dict[str, Any]) -> None:
        del data["analysis"]

    store, _ = create_study(
        f"sqlite:///{tmp_path / 's.db'}", write_protocol(PHOSP, tmp_path, drop), admin="admin"
    )
    with pytest.raises(ReportError, match="no analysis section"):
        build_report(store, by="admin", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    store.dispose()


def test_nothing_to_report_yet(tmp_path: Path) -> None:
    store, _ = create_study(f"sqlite:///{tmp_path / 's.db'}", PHOSP, admin="admin")
    with pytest.raises(
        ReportError, match="nothing to report yet: study 'phosp-r-immune' has no participants"
    ):
        build_report(store, by="admin", out=tmp_path / "r")
    add_participant(store, by="admin", values=person(), today=TODAY)
    with pytest.raises(ReportError, match="1 participant\\(s\\), none randomised"):
        build_report(store, by="admin", out=tmp_path / "r")
    store.dispose()


def test_cli_report_and_its_errors(built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = [
        "report",
        "--db",
        built.url,
        "--user",
        "assessor1",
        "--out",
        str(out),
        "--today",
        TODAY.isoformat(),
    ]
    assert run([*args, "--no-pdf"]) == 0
    printed = capsys.readouterr().out
    assert "Blinded report: all arms pooled. Written for assessor1 (role assessor)" in printed
    assert (out / "report.html").exists() and not (out / "report.pdf").exists()
    assert run(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "pass --overwrite" in err
    assert run(["report", "--db", built.url, "--user", "nobody", "--out", str(tmp_path / "x")]) == 1
    assert "unknown or inactive user 'nobody'" in capsys.readouterr().err


# -- both backends ---------------------------------------------------------------------------------


def _complete_case(data: dict[str, Any]) -> None:
    del data["analysis"]["imputation"]


def test_report_on_both_backends(make_study: Any, tmp_path: Path) -> None:
    """The report's store queries (rehab, adverse events, files, chains) run on SQLite and PostgreSQL."""
    study = make_study(protocol=write_protocol(TWO_ARM, tmp_path, _complete_case))
    trial = build_trial(study.store, n=10, rehab=True, missing_week8=(2,))
    store_gates(study.store, gate_values(trial, np.random.default_rng(1)))
    prescribe_and_log(study.store, trial, tmp_path)
    result = build_report(study.store, by="stats1", out=tmp_path / "r", today=TODAY, pdf=False)
    assert not result.blinded
    page = (result.out / "report.html").read_text(encoding="utf-8")
    assert "Randomised (n=10)" in _figure_lines(page, "consort")
    html = visible_text(page)
    assert "Sessions attended / offered" in html
    from sqlalchemy import func, select

    from immunorehab.cytometry.tables import CytometryFile

    with study.store.read("lab1") as session:
        stored = session.scalar(select(func.count(CytometryFile.id)))
    assert stored and len(re.findall(r">\d+ populations<", html)) == stored  # one row per stored file
    prov = json.loads((result.out / "provenance.json").read_text(encoding="utf-8"))
    assert prov["programmes"] and all(c["ok"] for c in prov["chains"])


def test_today_changes_follow_up_status(built: Built, tmp_path: Path) -> None:
    """Before the week-8 windows open nobody is lost to follow-up."""
    early = dt.date(2026, 3, 1)
    result = build_report(
        built.store, by="lab1", out=tmp_path / "r", today=early, analysis=built.analyses[True], pdf=False
    )
    svg = _figure_lines((result.out / "report.html").read_text(encoding="utf-8"), "consort")
    assert "Lost to follow-up (n=0)" in svg


def test_demo_step_writes_both_reports(built: Built, tmp_path: Path) -> None:
    from immunorehab.report.demo import demo_report
    from immunorehab.study.demo import DemoContext

    ctx = DemoContext(
        store=built.store,
        out=tmp_path,
        seed=1,
        today=TODAY,
        protocol=load_protocol(TWO_ARM),
        randomised=(),
        users={},
    )
    lines = demo_report(ctx)
    assert lines[0].startswith("Unblinded report: results by arm for stats1 (statistician)")
    assert lines[1].startswith("Blinded report: all arms pooled for assessor1 (assessor)")
    for folder in ("report", "report-blinded"):
        assert (tmp_path / folder / "report.pdf").read_bytes().startswith(b"%PDF-")


def test_sections_start_on_new_pages_and_table_headers_repeat(built: Built) -> None:
    reader = PdfReader(built.report("stats1").out / "report.pdf")
    pages = [_normal(p.extract_text() or "") for p in reader.pages]
    starts = [max(i for i, page in enumerate(pages) if h.lower() in page) for h in HEADINGS]
    assert len(set(starts)) == len(starts) and starts == sorted(starts), starts  # one section per page start
    assert starts[0] >= 1  # the cover (with the contents) is a page of its own
    appendix = range(starts[HEADINGS.index("Appendix A. Descriptive statistics")], starts[-1])
    assert len(appendix) >= 2  # the table runs over pages...
    assert all("outcome / visit" in pages[i] for i in appendix)  # ...and its header repeats on each


def test_a_tampered_audit_trail_is_reported_broken(tmp_path: Path) -> None:
    store, _ = create_study(
        f"sqlite:///{tmp_path / 's.db'}", write_protocol(TWO_ARM, tmp_path, _plan), admin="admin"
    )
    for name, role in ROLE_USERS.items():
        add_user(store, by="admin", username=name, role=role)
    build_trial(store, n=6, missing_week8=())
    with store.engine.begin() as conn:  # what someone editing the database file behind our back would do
        conn.exec_driver_sql("DROP TRIGGER audit_event_no_update")
        conn.exec_driver_sql("UPDATE audit_event SET reason = 'edited' WHERE id = 12")
    result = build_report(store, by="lab1", out=tmp_path / "r", today=TODAY, pdf=False)
    html = (result.out / "report.html").read_text(encoding="utf-8")
    assert "BROKEN" in html and "audit row 12" in html
    prov = json.loads((result.out / "provenance.json").read_text(encoding="utf-8"))
    audit = next(c for c in prov["chains"] if c["name"] == "audit trail")
    assert audit["ok"] is False and "audit row 12" in audit["problem"]
    store.dispose()
