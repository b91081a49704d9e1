"""Write the outputs of `advlab explain` and `advlab robust-features`: the JSON, the SVG figures
and a self-contained ``report.html``, all drawn from the JSON data the library returned
(:func:`advlab.explain.explanation.explain_samples`, :class:`advlab.explain.RobustFeatures`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from advlab.report import explain_html as html
from advlab.report import explain_plots as plots


def write_explanation(out_dir: Path, explanation: Mapping[str, Any], *,
                      top: int = 20) -> list[Path]:
    """``explain.json``, ``figures/*.svg`` and ``report.html`` for one explanation; returns the
    figures written. The JSON gets the figures' paths under ``"figures"``."""
    method, dataset = explanation["method"], explanation["dataset"]
    figures: dict[str, str | None] = {}
    ranking: list[Mapping[str, Any]] = []
    if "importance" in explanation:
        ranking = explanation["importance"]["ranking"]
        figures["importance"] = plots.importance_figure(
            ranking, top=top, title=f"{dataset}: permutation importance ({explanation['loss']}, "
            f"B = {explanation['permutations']})",
            xlabel=f"{explanation['loss']} increase after permutation")
    elif "ranking" in explanation:
        ranking = explanation["ranking"]
        figures["importance"] = plots.importance_figure(
            ranking, top=top, title=f"{dataset}: mean |{method}|",
            xlabel="mean |attribution| (± std over samples)")
    elif "maps" in explanation:
        maps = [np.asarray(m) for m in explanation["maps"]]
        figures["overlays"] = plots.overlay_figure(
            [np.asarray(x) for x in explanation["images"]],
            [m if m.ndim == 2 else m.mean(0) for m in maps],
            titles=[f"label {label}" for label in explanation["labels"]],
            signed=bool(explanation["signed"]))
    written = _write_figures(out_dir, figures)
    data = {k: v for k, v in explanation.items() if k not in ("images", "labels", "signed")}
    data["figures"] = [str(p) for p in written]
    (out_dir / "explain.json").write_text(json.dumps(data, indent=1) + "\n")
    settings = {k: v for k, v in data.items() if k not in ("importance", "ranking", "maps",
                                                            "figures")}
    tables = [("Ranking (top 30)", html.table(
        ["feature", "importance", "± std"],
        [[r["name"], r["importance"], r["std"]] for r in ranking[:30]]))] if ranking else []
    (out_dir / "report.html").write_text(html.render_page(
        f"advlab explain: {method}", settings, figures, tables), encoding="utf-8")
    return written


def write_robust_features(out_dir: Path, data: Mapping[str, Any], *, ks: Sequence[int],
                          attacks: Sequence[str]) -> None:
    """``robust_features.json``, the ranking and accuracy figures and ``report.html`` for one
    robust feature selection (``data`` is :meth:`RobustFeatures.as_dict` with its settings)."""
    k_mid = sorted(ks)[len(ks) // 2]
    figures = {
        "rankings": plots.ranking_comparison_figure(
            data["clean_importance"]["ranking"], data["adversarial_importance"]["ranking"],
            titles=("B on clean training data", "T+A on adversarial data A"), k=k_mid),
        "robust-features": plots.robust_features_figure(data["rows"]),
    }
    _write_figures(out_dir, figures)
    (out_dir / "robust_features.json").write_text(json.dumps(data, indent=1) + "\n")
    header = ["model", "columns", "clean accuracy", *[f"{a} (white box)" for a in attacks],
              *[f"{a} from B" for a in attacks]]
    rows = [[r["model"], r["n_columns"], r["clean_accuracy"],
             *[(r["robust_accuracy"] or {}).get(a) for a in attacks],
             *[(r["transfer_accuracy"] or {}).get(a) for a in attacks]] for r in data["rows"]]
    kept = [[r["model"], r["features"]] for r in data["rows"] if r["k"] is not None]
    (out_dir / "report.html").write_text(html.render_page(
        f"advlab robust-features: {data['settings']['dataset']}", data["settings"], figures,
        [("Accuracy", html.table(header, rows)),
         ("Selected features", html.table(["model", "features"], kept))]), encoding="utf-8")


def _write_figures(out_dir: Path, figures: Mapping[str, str | None]) -> list[Path]:
    folder = out_dir / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, svg in figures.items():
        if svg is not None:
            path = folder / f"{name}.svg"
            path.write_text(svg, encoding="utf-8", newline="\n")
            written.append(path)
    return written
