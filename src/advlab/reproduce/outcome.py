"""What an experiment's ``run(config)`` returns, built one way: :func:`outcome`.

The dict holds ``figure`` (advlab's headline, one line), ``metrics`` (name -> ``{"mean",
"std", "n", "values"}`` over seeds), ``seeds``, ``spread`` (the headline's ``mean ± std``),
``verdict`` (``reproduced`` / ``reproduced at laptop scale`` / ``not reproduced``), ``reason``,
``dataset``, ``protocol`` (what this run did, scaled down or not) and ``plots`` (specs that
:mod:`advlab.report.reproduction` draws: ``{"kind": "lines" | "bars", ...}``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

REPRODUCED = "reproduced"
LAPTOP = "reproduced at laptop scale"
NOT_REPRODUCED = "not reproduced"
VERDICTS = (REPRODUCED, LAPTOP, NOT_REPRODUCED)


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}``; sample std, 0 for one value; NaNs are dropped."""
    vals = [float(v) for v in values if not math.isnan(float(v))]
    if not vals:
        return {"mean": float("nan"), "std": float("nan"), "n": 0, "values": []}
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": statistics.fmean(vals), "std": std, "n": len(vals), "values": vals}


def pm(stat: Mapping[str, Any], *, scale: float = 100.0, digits: int = 1,
       unit: str = " %") -> str:
    """``mean ± std`` of a :func:`mean_std` (just the mean for one seed), times ``scale``."""
    if not stat["n"]:
        return "–"
    mean = f"{scale * stat['mean']:.{digits}f}"
    return mean + unit if stat["n"] == 1 else f"{mean} ± {scale * stat['std']:.{digits}f}{unit}"


def summarize(per_seed: Sequence[Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """:func:`mean_std` of every numeric key of the per-seed dicts."""
    keys = [k for k, v in per_seed[0].items() if isinstance(v, (int, float))]
    return {k: mean_std([d[k] for d in per_seed]) for k in keys}


def verdict(ok: bool, *, scaled: bool) -> str:
    """The verdict of a headline that holds (``ok``) at full or at reduced (``scaled``) scale."""
    if not ok:
        return NOT_REPRODUCED
    return LAPTOP if scaled else REPRODUCED


def outcome(*, figure: str, metrics: Mapping[str, Mapping[str, Any]], seeds: Sequence[int],
            headline: str, ok: bool, scaled: bool, reason: str, dataset: str, protocol: str,
            plots: Sequence[Mapping[str, Any]] = (), scale: float = 100.0,
            unit: str = " %") -> dict[str, Any]:
    """The result dict of an experiment (see the module docstring). ``headline`` names the
    metric whose ``mean ± std`` is the row's spread."""
    if headline not in metrics:
        raise ValueError(f"outcome: headline {headline!r} is not among the metrics "
                         f"{sorted(metrics)}")
    return {"figure": figure, "metrics": {k: dict(v) for k, v in metrics.items()},
            "seeds": list(seeds), "headline": headline,
            "spread": pm(metrics[headline], scale=scale, unit=unit),
            "verdict": verdict(ok, scaled=scaled), "reason": reason, "dataset": dataset,
            "protocol": protocol, "plots": [dict(p) for p in plots]}


def line_plot(title: str, x_label: str, y_label: str,
              series: Mapping[str, tuple[Sequence[float], Sequence[Mapping[str, Any]]]],
              *, percent: bool = True) -> dict[str, Any]:
    """A line-plot spec: ``series`` maps a label to ``(x values, mean_std per x)``."""
    return {"kind": "lines", "title": title, "x_label": x_label, "y_label": y_label,
            "percent": percent,
            "series": [{"label": label, "x": [float(v) for v in xs],
                        "y": [s["mean"] for s in stats], "std": [s["std"] for s in stats]}
                       for label, (xs, stats) in series.items()]}


def bar_plot(title: str, y_label: str, categories: Sequence[str],
             series: Mapping[str, Sequence[Mapping[str, Any]]], *,
             percent: bool = True) -> dict[str, Any]:
    """A grouped-bar spec: ``series`` maps a label to one mean_std per category."""
    return {"kind": "bars", "title": title, "y_label": y_label, "percent": percent,
            "categories": list(categories),
            "series": [{"label": label, "y": [s["mean"] for s in stats],
                        "std": [s["std"] for s in stats]} for label, stats in series.items()]}
