"""The reproduction page: ``reproduction.html`` (self-contained, the report's style) and the
markdown of docs/reproduction.md, drawn from the results of ``advlab reproduce`` (one dict per
experiment, :mod:`advlab.reproduce.runner`). Like the other pages it only formats: the plots
are the specs an experiment returned (``lines``: a metric against a level, ±std shaded;
``bars``: grouped bars with ±std whiskers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from advlab.report.page import CSS, figure, kv, section
from advlab.report.plots import _style, _svg

VERDICT_CLASS = {"reproduced": "good", "reproduced at laptop scale": "good",
                 "not reproduced": "bad"}


def plot_svg(spec: Mapping[str, Any], name: str) -> str | None:
    """One plot spec as inline SVG (``None`` for an unknown kind or no data)."""
    series = [s for s in spec.get("series") or [] if s.get("y")]
    if not series or spec.get("kind") not in ("lines", "bars"):
        return None
    with _style(name):
        fig = Figure(figsize=(5.4, 3.1), layout="constrained")
        ax = fig.subplots()
        if spec["kind"] == "lines":
            for s in series:
                x, y = np.asarray(s["x"], float), np.asarray(s["y"], float)
                std = np.nan_to_num(np.asarray(s.get("std") or [0] * len(y), float))
                line, = ax.plot(x, y, marker="o", ms=3.5, lw=1.8, label=s["label"])
                if std.any():
                    ax.fill_between(x, y - std, y + std, color=line.get_color(), alpha=0.15,
                                    lw=0)
            ax.set_xlabel(spec.get("x_label", ""))
        else:
            cats = spec.get("categories") or []
            width = 0.8 / len(series)
            for i, s in enumerate(series):
                pos = np.arange(len(cats)) + (i - (len(series) - 1) / 2) * width
                std = np.nan_to_num(np.asarray(s.get("std") or [0] * len(cats), float))
                ax.bar(pos, np.asarray(s["y"], float), width, yerr=std if std.any() else None,
                       label=s["label"], capsize=2)
            ax.set_xticks(np.arange(len(cats)), [str(c) for c in cats], fontsize=7.5)
        if spec.get("percent", True):
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylabel(spec.get("y_label", ""))
        ax.set_title(spec.get("title", ""))
        ax.grid(True, axis="y")
        if len(series) > 1 or spec["kind"] == "lines":
            ax.legend(loc="best")
        return _svg(fig, name)


def verdict_text(r: Mapping[str, Any]) -> tuple[str, str]:
    """``(verdict, reason)`` of a result of any status."""
    status = r.get("status")
    if status == "skipped":
        return "skipped", str(r.get("reason", ""))
    if status == "failed":
        return "failed", str(r.get("error", ""))
    return str(r.get("verdict", "")), str(r.get("reason", ""))


def _seeds(r: Mapping[str, Any]) -> str:
    seeds = r.get("seeds") or []
    if r.get("status") != "done":
        return "–"
    return f"{r.get('spread', '–')} ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})"


def _row(r: Mapping[str, Any]) -> str:
    verdict, reason = verdict_text(r)
    cls = VERDICT_CLASS.get(verdict, "warning")
    name = escape(str(r["name"]))
    status = escape(str(r.get("status")))
    return (f'<tr id="row-{name}" data-experiment="{name}" data-status="{status}">'
            f'<td><a href="#exp-{name}">{escape(str(r.get("title") or name))}</a>'
            f'<div class="muted small">{escape(str(r.get("paper", "")))}</div></td>'
            f"<td>{escape(str(r.get('claim', '')))}</td>"
            f"<td>{escape(str(r.get('figure', '–')))}</td><td class=\"num\">{escape(_seeds(r))}"
            f"</td><td><code>{escape(str(r.get('command', '')))}</code></td>"
            f'<td><span class="tag {cls}">{escape(verdict)}</span>'
            f'<div class="small">{escape(reason)}</div></td></tr>')


def _metrics(r: Mapping[str, Any]) -> str:
    rows = []
    for key, stat in (r.get("metrics") or {}).items():
        values = ", ".join(f"{v:.4g}" for v in stat.get("values", []))
        rows.append((key, f"{stat.get('mean', float('nan')):.4g} ± "
                          f"{stat.get('std', float('nan')):.2g} <span class=\"muted\">"
                          f"[{escape(values)}]</span>"))
    return kv(rows) if rows else ""


def _detail(r: Mapping[str, Any]) -> str:
    name = str(r["name"])
    figures = "".join(figure(plot_svg(p, f"{name}-{i}"), "") for i, p in
                      enumerate(r.get("plots") or []))
    info = [("dataset", escape(str(r.get("dataset", "")))),
            ("this run", escape(str(r.get("protocol", "–")))),
            ("seeds", escape(", ".join(str(s) for s in r.get("seeds") or []) or "–")),
            ("seconds", escape(f"{r.get('seconds', 0):.0f}")),
            ("command", f"<code>{escape(str(r.get('command', '')))}</code>")]
    if r.get("status") == "failed":
        info.append(("error", f"<pre>{escape(str(r.get('traceback', r.get('error'))))}</pre>"))
    body = (kv(info) + _metrics(r) + f'<div class="grid2">{figures}</div>' +
            f"<details><summary>Protocol</summary><pre>{escape(str(r.get('protocol_doc', '')))}"
            "</pre></details>")
    return section(f"exp-{name}", str(r.get("title") or name), body)


def render_reproduction(results: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """The whole page. ``meta``: ``quick``, ``seconds`` (compute time of the experiments),
    ``command``, ``created``."""
    counts: dict[str, int] = {}
    for r in results:
        v = verdict_text(r)[0]
        counts[v] = counts.get(v, 0) + 1
    cards = "".join(
        f'<div class="card {VERDICT_CLASS.get(v, "")}"><div class="label">{escape(v)}</div>'
        f'<div class="value">{n}</div></div>' for v, n in counts.items())
    kind = "quick (smoke) protocol" if meta.get("quick") else "full protocol"
    table = ('<div class="scroll"><table id="reproduction-table"><thead><tr><th>experiment</th>'
             "<th>paper's figure</th><th>advlab's figure</th><th>spread (seeds)</th>"
             "<th>command</th><th>verdict</th></tr></thead><tbody>" +
             "".join(_row(r) for r in results) + "</tbody></table></div>")
    head = (f'<header class="top"><h1>Reproducing the papers</h1><div class="sub">'
            f"{len(results)} experiments, {escape(kind)}</div><div class=\"meta\">"
            f"{escape(str(meta.get('command', '')))} · compute "
            f"{float(meta.get('seconds', 0)) / 60:.1f} min · {escape(str(meta.get('created', '')))}"
            "</div></header>")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>advlab reproduce</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        "<main>", head, f'<div class="cards">{cards}</div>',
        section("table", "Paper beside advlab", table, "Spread: mean ± std of the headline "
                "over seeds. Laptop scale: the paper's protocol on smaller data or with fewer "
                "steps (each experiment says what)."),
        *[_detail(r) for r in results],
        "<footer>Rendered by advlab.report.reproduction from the experiments' JSON; nothing "
        "on this page was recomputed.</footer>", "</main>", "</body>", "</html>", ""])


def write_reproduction(out_dir: Path | str, results: Sequence[Mapping[str, Any]],
                       meta: Mapping[str, Any]) -> Path:
    """Write ``out_dir/reproduction.html`` and return its path."""
    path = Path(out_dir) / "reproduction.html"
    path.write_text(render_reproduction(results, meta), encoding="utf-8")
    return path


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def reproduction_markdown(results: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """docs/reproduction.md: the table of the page, with how it was made and how long it took."""
    kind = "--quick (smoke) protocol" if meta.get("quick") else "full protocol"
    lines = [
        "# Reproducing the papers: `advlab reproduce`", "",
        f"Generated by `{meta.get('command', '')}` ({kind}); compute time "
        f"{float(meta.get('seconds', 0)) / 60:.1f} min on {meta.get('machine', 'this machine')}"
        f" ({meta.get('created', '')}). Each experiment's protocol (paper, table or figure, "
        "what is scaled down and why) is the docstring of its module in "
        "`src/advlab/reproduce/`; the HTML page `reproduction.html` in the output folder has "
        "the plots and every seed's value.", "",
        "| experiment | paper figure | advlab figure | seeds / spread | command | verdict |",
        "|---|---|---|---|---|---|"]
    for r in results:
        verdict, reason = verdict_text(r)
        lines.append(f"| {_md(r.get('title') or r['name'])} ({_md(r.get('paper', ''))}) | "
                     f"{_md(r.get('claim', ''))} | {_md(r.get('figure', '–'))} | "
                     f"{_md(_seeds(r))} | `{_md(r.get('command', ''))}` | "
                     f"**{_md(verdict)}**: {_md(reason)} |")
    return "\n".join(lines) + "\n"
