"""The report's figures, drawn from summary.json and returned as compact, deterministic SVG.

Every function takes a part of the summary (see ``advlab.report``) and returns an SVG string, or
``None`` when there is nothing to draw. Figures are built on ``matplotlib.figure.Figure``
directly, never through pyplot, so no global figure state is touched; the style lives in an
``rc_context``. The SVG is made reproducible (fixed ``svg.hashsalt``, no date), text stays text
(``svg.fonttype = "none"``), and every ``id`` is prefixed with the figure's name so that several
figures can be inlined in one HTML page without clashing.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
import numpy as np
from cycler import cycler
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

NORM_LABELS = {"linf": "L∞", "l2": "L2", "l1": "L1", "l0": "L0"}
NORM_SYMBOLS = {"linf": "‖δ‖∞", "l2": "‖δ‖₂", "l1": "‖δ‖₁", "l0": "‖δ‖₀"}
MAX_HISTOGRAMS = 24
MAX_GALLERY = 12
WORST = "worst case"
_PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04",
            "#64748b", "#dc2626", "#4f46e5"]
_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "text.parse_math": False,          # labels are data: a "$" must never start mathtext
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "axes.edgecolor": "#9ca3af",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=_PALETTE),
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.7,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
}


def norm_label(norm: object) -> str:
    return NORM_LABELS.get(str(norm), str(norm))


def _mapping(x: object) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def floats(values: object) -> np.ndarray:
    """A float array from a JSON list; null and anything non-numeric become NaN."""
    if not isinstance(values, (list, tuple)):
        return np.zeros(0)
    return np.array([float(v) if isinstance(v, (int, float)) and not isinstance(v, bool)
                     else math.nan for v in values], dtype=float)


def figures(summary: Mapping[str, Any]) -> dict[str, str]:
    """All figures of a summary, by name (``curves``, ``histograms``, ``gallery``, ``features``)."""
    card = summary.get("dataset_card") or {}
    drawn = {
        "curves": curves_figure(summary.get("curves") or {}),
        "histograms": histograms_figure(summary.get("histograms") or {}),
        "gallery": gallery_figure(summary.get("gallery") or [], card.get("class_names")),
        "features": features_figure(summary.get("tabular") or {}),
        "transfer": transfer_figure(summary.get("transfer") or {}),
    }
    return {name: svg for name, svg in drawn.items() if svg is not None}


@contextmanager
def _style(name: str) -> Iterator[None]:
    rc: Any = {**_RC, "svg.hashsalt": f"advlab-{name}"}
    with matplotlib.rc_context(rc):
        yield


def _svg(fig: Figure, name: str) -> str:
    """Serialise ``fig`` compactly: no XML prolog or metadata, coordinates to 0.01 pt, only the
    ids that are referenced (prefixed with ``name``), and the font family set once."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    refs = set(re.findall(r'(?:url\(#|href="#)([^")]+)', svg))
    svg = re.sub(r' id="([^"]+)"', lambda m: f' id="{name}-{m.group(1)}"'
                 if m.group(1) in refs else "", svg)
    svg = re.sub(r'(url\(#|href="#)', rf"\g<1>{name}-", svg)
    svg = re.sub(r' transform="rotate\(-?0 [^"]*\)"', "", svg)
    svg = re.sub(r'( (?:d|x|y|width|height|transform)=")([^"]*)"', lambda m: m.group(1) + re.sub(
        r"(\d\.\d\d)\d+", r"\1", m.group(2)) + '"', svg)
    svg = re.sub(r"\n\s+", "\n", svg).replace("font-family: 'DejaVu Sans', sans-serif; ", "")
    svg = svg.replace("</style>", f"\nsvg.figure-{name} text{{font-family:'DejaVu Sans',"
                      "sans-serif}</style>", 1)
    return svg.replace("<svg ", f'<svg class="figure-{name}" role="img" ', 1).strip() + "\n"


def _grid(n: int, ncols: int, width: float, height: float) -> tuple[Figure, list[Any]]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", color="#6b7280", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def curves_figure(curves: Mapping[str, Any]) -> str | None:
    """Security-evaluation curves: robust accuracy against eps, one panel per norm, one line per
    attack and a bold black line for the per-sample worst case."""
    panels = [(norm, block) for norm, block in curves.items() if isinstance(block, Mapping)]
    if not panels:
        return None
    with _style("curves"):
        fig, axes = _grid(len(panels), 3, 3.4 if len(panels) > 2 else 5.0, 3.3)
        for ax, (norm, block) in zip(axes, panels, strict=True):
            eps = floats(block.get("eps"))
            series: Mapping[str, Any] = _mapping(block.get("series"))
            ordered = [k for k in series if k != WORST] + [k for k in series if k == WORST]
            dense: Mapping[str, Any] = _mapping(block.get("minimal_norm"))
            for label in ordered:
                ys = floats(series[label])
                n = min(len(eps), len(ys))
                if label == WORST:
                    ax.plot(eps[:n], ys[:n], color="#111827", lw=2.8, marker="o", ms=4,
                            label=WORST, zorder=5)
                elif isinstance(dense.get(label), Mapping):
                    # a minimal-norm attack: its whole curve from one run, grid eps as markers
                    curve = dense[label]
                    line, = ax.step(floats(curve.get("eps")), floats(curve.get("robust_accuracy")),
                                    where="post", lw=1.5, label=f"{label} (minimal norm)")
                    ax.plot(eps[:n], ys[:n], ls="none", marker="o", ms=3,
                            color=line.get_color())
                else:
                    ax.plot(eps[:n], ys[:n], lw=1.5, marker="o", ms=3, label=str(label))
            ax.set_ylim(-0.03, 1.03)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.grid(True)
            ax.set_title(f"{norm_label(norm)} threat model", loc="left", fontweight="bold")
            ax.set_xlabel(f"ε  ({norm_label(norm)} budget)")
            ax.set_ylabel("robust accuracy")
            if ordered:
                ax.legend(loc="best")
            else:
                _empty(ax, "no series")
        return _svg(fig, "curves")


def histograms_figure(histograms: Mapping[str, Any]) -> str | None:
    """Histograms of the per-sample perturbation norms of successful adversarial examples."""
    items = [(k, v) for k, v in histograms.items() if isinstance(v, Mapping)][:MAX_HISTOGRAMS]
    if not items:
        return None
    with _style("histograms"):
        fig, axes = _grid(len(items), 4, 2.6, 2.15)
        for ax, (key, hist) in zip(axes, items, strict=True):
            values = floats(hist.get("values"))
            values = values[np.isfinite(values)]
            if values.size == 0:
                ax.set_title(str(key), loc="left")
                _empty(ax, "no successes")
                continue
            median = float(np.median(values))
            ax.hist(values, bins=min(20, max(5, values.size // 4)), color="#60a5fa",
                    histtype="stepfilled", edgecolor="#3b82f6", linewidth=0.6)
            ax.axvline(median, color="#1e3a8a", lw=1.2, ls="--")
            ax.set_title(f"{key}\nmedian {median:.3g} · n = {values.size}", loc="left",
                         fontsize=8.5)
            ax.set_xlabel(NORM_SYMBOLS.get(str(hist.get("norm")), str(hist.get("norm"))))
            ax.tick_params(labelsize=7.5)
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.yaxis.set_major_locator(MaxNLocator(4, integer=True))
        return _svg(fig, "histograms")


def _class_name(index: object, class_names: object) -> str:
    if isinstance(index, int) and isinstance(class_names, list) and 0 <= index < len(class_names):
        return str(class_names[index])
    return "–" if index is None else str(index)


def _pct(x: object) -> str:
    return f"{100 * x:.0f} %" if isinstance(x, (int, float)) and math.isfinite(x) else "–"


def _image(flat: object, shape: object) -> np.ndarray | None:
    """An (H, W) or (H, W, 3) array from a flat list and a (C, H, W) or (H, W) shape."""
    values = floats(flat)
    dims = [int(d) for d in shape] if isinstance(shape, list) else []
    if not dims or values.size != math.prod(dims) or not np.isfinite(values).all():
        return None
    img = values.reshape(dims)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
    return img if img.ndim in (2, 3) else None


def gallery_figure(gallery: Sequence[Any], class_names: object = None) -> str | None:
    """Image gallery: original, adversarial and amplified perturbation, two examples per row."""
    rows = [g for g in gallery if isinstance(g, Mapping)][:MAX_GALLERY]
    if not rows:
        return None
    with _style("gallery"):
        fig, axes = _grid(3 * len(rows), 6, 1.72, 2.05)
        fig.set_layout_engine("constrained", h_pad=0.08, w_pad=0.02)
        for i, row in enumerate(rows):
            ax_clean, ax_adv, ax_delta = axes[3 * i: 3 * i + 3]
            for ax in (ax_clean, ax_adv, ax_delta):
                ax.set_axis_off()
            clean, adv = _image(row.get("clean"), row.get("shape")), _image(
                row.get("adversarial"), row.get("shape"))
            label, adv_pred = row.get("label"), row.get("adv_pred")
            eps = row.get("eps")
            eps_text = f" ε={eps:g}" if isinstance(eps, (int, float)) else ""
            ax_clean.set_title(
                f"#{row.get('index', '–')} true {_class_name(label, class_names)}\n"
                f"pred {_class_name(row.get('clean_pred'), class_names)}"
                f" ({_pct(row.get('clean_conf'))})", fontsize=8)
            fooled = adv_pred is not None and adv_pred != label
            ax_adv.set_title(
                f"{row.get('attack', '–')}{eps_text}\n"
                f"pred {_class_name(adv_pred, class_names)} ({_pct(row.get('adv_conf'))})",
                fontsize=8, color="#b91c1c" if fooled else "#15803d")
            if clean is None or adv is None or clean.shape != adv.shape:
                ax_delta.set_title("image unavailable", fontsize=8, color="#6b7280")
                continue
            gray = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if clean.ndim == 2 else {}
            ax_clean.imshow(np.clip(clean, 0, 1), interpolation="none", **gray)
            ax_adv.imshow(np.clip(adv, 0, 1), interpolation="none", **gray)
            delta = adv - clean
            scale = float(np.abs(delta).max()) or 1.0
            shown = delta.mean(axis=-1) if delta.ndim == 3 else delta
            ax_delta.imshow(shown, cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="none")
            ax_delta.set_title(f"perturbation ×{0.5 / scale:.0f}\n‖δ‖∞ = {scale:.3g}",
                               fontsize=8)
        return _svg(fig, "gallery")


def features_figure(tabular: Mapping[str, Any], top: int = 10) -> str | None:
    """Horizontal bars of the most perturbed features (mean |delta|): one panel per attack, at
    its largest eps (its last row); the table beside the figure lists every row."""
    last: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for k, v in tabular.items():
        if isinstance(v, Mapping) and isinstance(v.get("top_features"), list):
            last[str(v.get("attack", k))] = (k, v)
    items = list(last.values())
    if not items:
        return None
    longest = max(min(top, len(v["top_features"])) for _, v in items)
    with _style("features"):
        fig, axes = _grid(len(items), 3, 3.45, 0.9 + 0.24 * max(longest, 2))
        for ax, (key, entry) in zip(axes, items, strict=True):
            feats = [f for f in entry["top_features"] if isinstance(f, Mapping)][:top]
            values = floats([f.get("mean_abs_delta") for f in feats])
            names = [_short(str(f.get("name", "–"))) for f in feats]
            ax.set_title(f"{key}\nvalid in domain: {_pct(entry.get('valid_rate'))}",
                         loc="left", fontsize=8.5)
            if not feats:
                _empty(ax, "no features")
                continue
            ax.barh(np.arange(len(feats)), np.nan_to_num(values), color="#f97316", height=0.7)
            ax.set_yticks(np.arange(len(feats)), names, fontsize=7.5)
            ax.invert_yaxis()
            ax.grid(True, axis="x")
            ax.set_xlabel("mean |Δ| (model input units)")
            ax.tick_params(axis="x", labelsize=7.5)
        return _svg(fig, "features")


def _short(name: str, width: int = 24) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def transfer_figure(transfer: Mapping[str, Any]) -> str | None:
    """Heat map of a transferability matrix (``advlab.evaluation.transfer``): transfer success
    of the attack crafted on each source (rows) against each target (columns), in percent."""
    sources, targets = transfer.get("sources"), transfer.get("targets")
    rows = transfer.get("success")
    if not (isinstance(sources, list) and isinstance(targets, list) and isinstance(rows, list)
            and sources and targets and len(rows) == len(sources)):
        return None
    values = np.array([floats(r) if len(floats(r)) == len(targets) else
                       np.full(len(targets), math.nan) for r in rows], dtype=float)
    attack = _mapping(transfer.get("attack"))
    title = (f"{attack.get('name', 'attack')} transfer success, "
             f"{norm_label(transfer.get('norm'))} ε = {transfer.get('eps')}, "
             f"n = {transfer.get('n')}")
    with _style("transfer"):
        fig = Figure(figsize=(1.6 + 1.05 * len(targets), 1.1 + 0.42 * len(sources)),
                     layout="constrained")
        ax = fig.subplots()
        ax.imshow(np.nan_to_num(values), cmap="Oranges", vmin=0, vmax=1, aspect="auto")
        for i in range(len(sources)):
            for j in range(len(targets)):
                v = values[i, j]
                ax.text(j, i, "–" if math.isnan(v) else f"{100 * v:.0f}%", ha="center",
                        va="center", fontsize=8, color="white" if v > 0.6 else "#111827")
        ax.set_xticks(np.arange(len(targets)), [_short(str(t), 16) for t in targets],
                      fontsize=7.5)
        ax.set_yticks(np.arange(len(sources)), [_short(str(s), 16) for s in sources],
                      fontsize=7.5)
        ax.set_xlabel("target (scored)")
        ax.set_ylabel("source (crafted on)")
        ax.spines[:].set_visible(False)
        ax.set_title(title, loc="left", fontsize=8.5)
        return _svg(fig, "transfer")
