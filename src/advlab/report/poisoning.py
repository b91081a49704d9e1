"""The poisoning report: one self-contained HTML page rendered from a poisoning run's
summary.json (schema ``advlab.poisoning/1``, written by ``advlab poison``).

Like the evaluation report, it only formats the summary: cards with the headline figures, the
poisoning curve (a metric against the poisoning rate or the number of injected points, clean
baseline at 0), the filter's precision and recall when a defense ran, triggered examples for
images, and the configuration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from advlab.report.html import DASH, num, pct, text
from advlab.report.page import CSS, figure, kv, section
from advlab.report.plots import _style, _svg, floats

SCHEMA = "advlab.poisoning/1"
METRIC_LABELS = {"test_accuracy": "test accuracy", "test_error": "test error",
                 "backdoor_success": "backdoor success"}


def curve_figure(curve: Mapping[str, Any]) -> str | None:
    """Each metric's median over seeds against the level, with the seeds' range shaded and the
    clean baseline (level 0) as a dashed line."""
    rows = [r for r in curve.get("rows") or [] if isinstance(r, Mapping)]
    if not rows:
        return None
    levels = sorted({float(r["level"]) for r in rows})
    metrics = [k for k in rows[0] if k not in ("level", "seed", "n_poisoned")]
    points = curve.get("level_name") == "points"
    with _style("poisoning"):
        fig = Figure(figsize=(5.6, 3.3), layout="constrained")
        ax = fig.subplots()
        for m in metrics:
            per = [floats([r[m] for r in rows if float(r["level"]) == lv]) for lv in levels]
            med = np.array([np.median(v) for v in per])
            line, = ax.plot(levels, med, marker="o", ms=3.5, lw=1.8,
                            label=METRIC_LABELS.get(m, m.replace("_", " ")))
            if any(v.size > 1 for v in per):
                ax.fill_between(levels, [v.min() for v in per], [v.max() for v in per],
                                color=line.get_color(), alpha=0.15, lw=0)
            if levels and levels[0] == 0:
                ax.axhline(med[0], color=line.get_color(), ls="--", lw=0.9)
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        if not points:
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        ax.set_xlabel("points injected" if points else "poisoning rate")
        ax.grid(True)
        ax.legend(loc="best")
        return _svg(fig, "poisoning")


def examples_figure(examples: Mapping[str, Any]) -> str | None:
    """Clean and triggered images side by side (image backdoors only)."""
    shape = examples.get("shape")
    clean, triggered = examples.get("clean") or [], examples.get("triggered") or []
    if not shape or not clean or len(shape) != 3:
        return None
    n = min(len(clean), len(triggered), 8)
    with _style("examples"):
        fig = Figure(figsize=(1.1 * n, 2.4), layout="constrained")
        axes = fig.subplots(2, n, squeeze=False)
        for j in range(n):
            for i, (row, title) in enumerate(((clean, "clean"), (triggered, "triggered"))):
                img = floats(row[j]).reshape(shape)
                ax = axes[i][j]
                ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0),
                          cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(title)
        return _svg(fig, "examples")


def _cards(s: Mapping[str, Any]) -> str:
    m = s.get("metrics") or {}
    cards = [("ROWS POISONED", f"{m.get('n_poisoned', DASH)}",
              f"of {m.get('n_train', DASH)} training rows")]
    for key, label in (("clean_accuracy", "CLEAN MODEL ACCURACY"),
                       ("poisoned_accuracy", "POISONED MODEL ACCURACY"),
                       ("backdoor_success", "BACKDOOR SUCCESS"),
                       ("defended_backdoor_success", "AFTER THE FILTER")):
        if key in m:
            cards.append((label, pct(m[key]), ""))
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="label">{escape(a)}</div><div class="value">{b}</div>'
        f'<div class="note">{escape(c)}</div></div>' for a, b, c in cards) + "</div>"


def _curve_table(curve: Mapping[str, Any]) -> str:
    medians = curve.get("medians") or {}
    if not medians:
        return ""
    metrics = list(medians)
    levels = list(next(iter(medians.values())))
    head = "".join(f"<th>{escape(METRIC_LABELS.get(m, m))} (median)</th>" for m in metrics)
    rate = curve.get("level_name") != "points"
    body = "".join("<tr><td>" + (pct(float(lv)) if rate else num(float(lv))) + "</td>" + "".join(
        f'<td class="num">{pct(medians[m].get(lv))}</td>' for m in metrics) + "</tr>"
        for lv in levels)
    name = "points injected" if curve.get("level_name") == "points" else "poisoning rate"
    return f"<table><thead><tr><th>{name}</th>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_poisoning_page(summary: Mapping[str, Any]) -> str:
    """The whole page for a poisoning summary."""
    s = summary if isinstance(summary, Mapping) else {}
    curve = s.get("curve") or {}
    sections = [section("curve", "Poisoning curve",
                         figure(curve_figure(curve), "No curve recorded.") + _curve_table(curve),
                         "Median over seeds (range shaded); dashed: the clean baseline.")]
    defense = s.get("defense")
    if isinstance(defense, Mapping):
        rows = [(str(k).replace("_", " "), pct(v) if k in ("precision", "recall") or
                 "accuracy" in k or "success" in k else num(v) if isinstance(v, (int, float))
                 else text(v)) for k, v in defense.items()]
        sections.append(section("defense", "Training-set filter", kv(rows),
                                 "Rows flagged as poisoned and removed before retraining."))
    examples = s.get("examples")
    if isinstance(examples, Mapping):
        sections.append(section("examples", "Triggered examples",
                                 figure(examples_figure(examples), "No examples recorded.")))
    config = escape(json.dumps(s.get("config"), indent=2, default=str))
    sections.append(section("config", "Run configuration",
                             f"<details><summary>Show the configuration (JSON)</summary>"
                             f"<pre>{config}</pre></details>"))
    title = f"Poisoning report – {text(s.get('attack'))} – {text(s.get('dataset'))}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        "<main>", '<header class="top"><h1>Poisoning report</h1>',
        f'<div class="sub">Attack {text(s.get("attack"))} · dataset {text(s.get("dataset"))} · '
        f'learner {text(s.get("learner"))}</div></header>', _cards(s), *sections,
        "<footer>Rendered by advlab.report from summary.json; nothing on this page was "
        "recomputed.</footer>", "</main>", "</body>", "</html>", ""])


def write_poisoning_report(run_dir: Path | str) -> Path:
    """Read ``run_dir/summary.json`` (a poisoning summary); write ``report.html`` beside it."""
    run_dir = Path(run_dir)
    source = run_dir / "summary.json"
    if not source.is_file():
        raise FileNotFoundError(f"no summary.json in {str(run_dir)!r}")
    summary = json.loads(source.read_text(encoding="utf-8"))
    if not isinstance(summary, dict) or summary.get("schema") != SCHEMA:
        raise ValueError(f"{source}: not a poisoning summary (schema {SCHEMA!r})")
    out = run_dir / "report.html"
    out.write_text(render_poisoning_page(summary), encoding="utf-8", newline="\n")
    return out
