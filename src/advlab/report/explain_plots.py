"""Figures of the explanations (advlab.explain), as compact deterministic SVG like :mod:`.plots`.

Every function takes plain JSON-style data (lists of dicts, nested lists of floats), so a figure
can be redrawn from a saved ``explain.json`` or ``robust_features.json`` without the model:

* :func:`importance_figure`: feature-importance bars with error bars (permutation importance,
  or mean |attribution| with its spread);
* :func:`ranking_comparison_figure`: two rankings side by side (clean vs robust), the features
  in both top-k lists highlighted;
* :func:`overlay_figure`: images with their saliency or Grad-CAM map overlaid;
* :func:`robust_features_figure`: clean and robust accuracy of B, T+A and T+A+XAIFS(k);
* :func:`success_vs_k_figure`: success of a top-k restricted attack against k.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from advlab.report.plots import _grid, _short, _style, _svg, floats

_BLUE, _ORANGE = "#2563eb", "#ea580c"


def importance_figure(ranking: Sequence[Mapping[str, Any]], *, title: str = "",
                      xlabel: str = "loss increase after permutation", top: int = 20,
                      name: str = "importance") -> str | None:
    """Horizontal bars of the ``top`` entries of ``ranking`` (``{name, importance, std}``, most
    important first), with ±std error bars."""
    rows = [r for r in ranking if isinstance(r, Mapping)][:top]
    if not rows:
        return None
    values = np.nan_to_num(floats([r.get("importance") for r in rows]))
    errors = np.nan_to_num(floats([r.get("std", 0.0) for r in rows]))
    with _style(name):
        fig = Figure(figsize=(4.8, 0.9 + 0.22 * len(rows)), layout="constrained")
        ax = fig.subplots()
        y = np.arange(len(rows))
        ax.barh(y, values, xerr=errors, color=_BLUE, height=0.7,
                error_kw={"elinewidth": 0.9, "capsize": 2, "ecolor": "#111827"})
        ax.set_yticks(y, [_short(str(r.get("name", "–"))) for r in rows], fontsize=7.5)
        ax.invert_yaxis()
        ax.grid(True, axis="x")
        ax.set_xlabel(xlabel)
        if title:
            ax.set_title(title, loc="left")
        return _svg(fig, name)


def ranking_comparison_figure(left: Sequence[Mapping[str, Any]],
                              right: Sequence[Mapping[str, Any]], *,
                              titles: tuple[str, str] = ("clean", "robust"), k: int = 10,
                              top: int = 15, name: str = "rankings") -> str | None:
    """Two rankings side by side; bars of features in both top-``k`` lists are highlighted
    (orange), the others grey-blue. Error bars are ±std."""
    lists = [[r for r in side if isinstance(r, Mapping)][:top] for side in (left, right)]
    if not lists[0] or not lists[1]:
        return None
    tops = [{str(r.get("name")) for r in side[:k]} for side in lists]
    both = tops[0] & tops[1]
    with _style(name):
        fig, axes = _grid(2, 2, 3.6, 0.9 + 0.22 * max(len(lists[0]), len(lists[1])))
        for ax, rows, title in zip(axes, lists, titles, strict=True):
            y = np.arange(len(rows))
            colors = [_ORANGE if str(r.get("name")) in both else _BLUE for r in rows]
            ax.barh(y, np.nan_to_num(floats([r.get("importance") for r in rows])),
                    xerr=np.nan_to_num(floats([r.get("std", 0.0) for r in rows])),
                    color=colors, height=0.7,
                    error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#111827"})
            ax.set_yticks(y, [_short(str(r.get("name", "–")), 20) for r in rows], fontsize=7.5)
            ax.invert_yaxis()
            ax.grid(True, axis="x")
            ax.set_title(title, loc="left", fontsize=8.5)
            ax.set_xlabel("loss increase", fontsize=8)
        fig.suptitle(f"orange: in both top-{k} lists ({len(both)} features)", fontsize=8.5)
        return _svg(fig, name)


def overlay_figure(images: Sequence[Any], maps: Sequence[Any], *,
                   titles: Sequence[str] | None = None, signed: bool = False,
                   name: str = "overlays") -> str | None:
    """For each image ``(H, W)`` (or ``(C, H, W)``, channels averaged): the image, and the map
    ``(H, W)`` overlaid on it (signed maps in red/blue, unsigned ones in a heat colour map)."""
    pairs = list(zip(images, maps, strict=True))
    if not pairs:
        return None
    with _style(name):
        fig, axes = _grid(2 * len(pairs), 6, 1.45, 1.7)
        for i, (img, amap) in enumerate(pairs):
            img_a, map_a = _plane(img), _plane(amap)
            ax_img, ax_map = axes[2 * i], axes[2 * i + 1]
            for ax in (ax_img, ax_map):
                ax.set_axis_off()
                ax.imshow(img_a, cmap="gray", vmin=0, vmax=1, interpolation="none")
            scale = float(np.abs(map_a).max()) or 1.0
            if signed:
                ax_map.imshow(map_a, cmap="RdBu_r", vmin=-scale, vmax=scale, alpha=0.7,
                              interpolation="none")
            else:
                ax_map.imshow(np.abs(map_a), cmap="inferno", vmin=0, vmax=scale, alpha=0.6,
                              interpolation="bilinear")
            if titles is not None:
                ax_img.set_title(str(titles[i]), fontsize=7.5)
        return _svg(fig, name)


def _plane(a: Any) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    return arr.mean(0) if arr.ndim == 3 else arr


def robust_features_figure(rows: Sequence[Mapping[str, Any]], *,
                           name: str = "robust-features") -> str | None:
    """Clean and robust accuracy against k for T+A+XAIFS(k), with B and T+A as dashed lines;
    one panel per attack (``rows`` as returned by ``RobustFeatures.as_dict()["rows"]``)."""
    rows = [r for r in rows if isinstance(r, Mapping)]
    fs = [r for r in rows if r.get("k") is not None and r.get("clean_accuracy") is not None]
    refs = {str(r.get("model")): r for r in rows if r.get("k") is None}
    attacks = sorted({a for r in fs for a in (r.get("robust_accuracy") or {})})
    if not fs or not attacks:
        return None
    ks = np.array([float(r["k"]) for r in fs])
    with _style(name):
        fig, axes = _grid(len(attacks), 3, 2.9, 2.6)
        for ax, attack in zip(axes, attacks, strict=True):
            for key, color in (("clean_accuracy", _BLUE), ("robust_accuracy", _ORANGE)):
                vals = [r[key] if key == "clean_accuracy" else r[key][attack] for r in fs]
                ax.plot(ks, vals, "o-", color=color, ms=3.5,
                        label="clean" if key == "clean_accuracy" else "robust")
                for ref, style in (("B", ":"), ("T+A", "--")):
                    if ref in refs:
                        v = refs[ref][key] if key == "clean_accuracy" else \
                            refs[ref][key][attack]
                        ax.axhline(v, color=color, ls=style, lw=0.9)
            ax.set_title(f"{attack}  (dotted: B, dashed: T+A)", loc="left", fontsize=8)
            ax.set_xlabel("k (top-k features of each ranking)")
            ax.set_ylabel("accuracy")
            ax.grid(True)
        axes[0].legend(loc="lower right")
        return _svg(fig, name)


def success_vs_k_figure(series: Mapping[str, Sequence[Mapping[str, Any]]], *,
                        name: str = "success-vs-k") -> str | None:
    """Attack success against k, one line per entry of ``series`` (rows of
    ``advlab.explain.guided.success_vs_k``); random-k controls dashed with ±std bands."""
    items = [(label, [r for r in rows if isinstance(r, Mapping)]) for label, rows in
             series.items()]
    items = [(label, rows) for label, rows in items if rows]
    if not items:
        return None
    with _style(name):
        fig = Figure(figsize=(4.6, 3.0), layout="constrained")
        ax = fig.subplots()
        for label, rows in items:
            ks = floats([r.get("k") for r in rows])
            line = ax.plot(ks, floats([r.get("success_rate") for r in rows]), "o-", ms=3.5,
                           label=f"{label}: top-k by importance")[0]
            if all("random_success_rate" in r for r in rows):
                mean = floats([r["random_success_rate"] for r in rows])
                std = floats([r.get("random_success_std", 0.0) for r in rows])
                ax.plot(ks, mean, "--", color=line.get_color(), lw=1,
                        label=f"{label}: k random features")
                ax.fill_between(ks, mean - std, mean + std, color=line.get_color(), alpha=0.15,
                                lw=0)
        ax.set_xscale("log")  # plain tick labels: the style turns mathtext off
        ticks = sorted({int(r["k"]) for _, rows in items for r in rows if "k" in r})
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=7)
        ax.set_xlabel("k (features the attacker may change; log scale)")
        ax.set_ylabel("evasion rate")
        ax.set_ylim(0, 1)
        ax.grid(True)
        ax.legend(fontsize=7)
        return _svg(fig, name)


__all__ = ["importance_figure", "overlay_figure", "ranking_comparison_figure",
           "robust_features_figure", "success_vs_k_figure"]
