"""One self-contained HTML report rendered from a run's summary.json.

The summary (schema ``advlab.evaluation/1``, written by ``advlab.evaluation``) is the source of
truth: the report only formats it and never touches models or data. The page has no scripts and
no external resources, so it can be mailed, archived or opened offline.

The report draws, it never computes: every figure it shows (the transfer matrix's heat map
included) is drawn from the JSON a library function returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from advlab.report import plots
from advlab.report.html import render_page

__all__ = ["render_html", "write_report"]
FIGURES = ("curves", "histograms", "gallery", "features", "transfer")


def render_html(summary: Mapping[str, Any]) -> str:
    """The report page for ``summary``, with its figures inlined as SVG."""
    return render_page(summary, plots.figures(summary))


def write_report(run_dir: Path | str) -> Path:
    """Read ``run_dir/summary.json`` (and ``timing.json``); write ``report.html`` and
    ``figures/*.svg`` beside it.

    Returns the path of ``report.html``. The same summary always gives byte-identical files.
    """
    from advlab.evaluation.summary import read_summary

    run_dir = Path(run_dir)
    summary = read_summary(run_dir)  # with the timings of timing.json put back
    figures = plots.figures(summary)
    folder = run_dir / "figures"
    folder.mkdir(exist_ok=True)
    for name in FIGURES:
        path = folder / f"{name}.svg"
        if name in figures:
            path.write_text(figures[name], encoding="utf-8", newline="\n")
        elif path.exists():
            path.unlink()                       # stale figure from an earlier report
    out = run_dir / "report.html"
    out.write_text(render_page(summary, figures), encoding="utf-8", newline="\n")
    return out
