"""The summary of an evaluation (schema ``advlab.evaluation/1``, the JSON truth the report
renders) and :class:`Evaluation`, what :func:`advlab.evaluation.evaluate` returns.

:func:`build_summary` turns the per-batch records into the summary: the aggregates of
:mod:`advlab.evaluation.aggregate` (robust accuracy, the per-sample worst case over attacks,
norms, curves, per-class figures), the run's configuration and versions, the model and dataset
cards, the timings and the sanity checks. NaN and inf become null: JSON has neither.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from advlab.data.base import Dataset
from advlab.evaluation import aggregate
from advlab.evaluation.plan import Plan

SCHEMA = "advlab.evaluation/1"
SUMMARY = "summary.json"


@dataclass
class Evaluation:
    """The result of :func:`evaluate`: the summary (the JSON truth) and the per-sample records."""

    summary: dict[str, Any]
    records: list[dict[str, Any]]
    out_dir: Path | None = None

    @property
    def clean_accuracy(self) -> float:
        return float(self.summary["clean_accuracy"])

    def robust_accuracy(self, attack: str, eps: float | None) -> float:
        """Robust accuracy of one attack row (``eps=None``: a minimal-norm attack's own run)."""
        for row in self.summary["results"]:
            if row["attack"] == attack and row["eps"] == eps:
                return float(row["robust_accuracy"])
        raise KeyError(f"no result for attack {attack!r} at eps {eps}")

    def worst_case(self, norm: str, eps: float) -> float:
        for row in self.summary["worst_case"]:
            if row["norm"] == norm and row["eps"] == eps:
                return float(row["robust_accuracy"])
        raise KeyError(f"no worst case for {norm} eps {eps}")

    def rows(self) -> list[dict[str, Any]]:
        """The result rows, flat (per-class figures dropped): one per attack × eps."""
        return [{k: v for k, v in r.items() if k != "per_class_robust_accuracy"}
                for r in self.summary["results"]]

    def to_dataframe(self) -> Any:
        """The result rows as a pandas DataFrame (pandas is optional: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Evaluation.to_dataframe needs pandas: pip install pandas") from None
        return pd.DataFrame(self.rows())

    def to_csv(self, path: str | Path) -> Path:
        import csv

        path = Path(path)
        rows = self.rows()
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.summary, indent=2, allow_nan=False) + "\n")
        return path


def build_summary(records: Sequence[Mapping[str, Any]], plan: Plan, dataset: Dataset,
                  model: nn.Module, *, split: str, seconds: float,
                  model_card: Mapping[str, Any] | None = None,
                  checks: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None
                  ) -> dict[str, Any]:
    """The summary of a complete run from its batch records (sorted by batch); ``checks``
    computes the sanity checks from the summary itself (none when ``None``)."""
    summary = aggregate.summarise(list(records), plan.runs, plan.grid, dataset)
    summary.update({
        "schema": SCHEMA, "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions(), "config": plan.config,
        "model_card": {"parameters": sum(p.numel() for p in model.parameters()),
                       **(dict(model_card) if model_card else {})},
        "dataset_card": aggregate.dataset_card(dataset, split, plan.n),
        "timing": {"seconds": round(seconds, 3),
                   "attack_seconds": round(sum(run["seconds"] for r in records
                                                for run in r["runs"]), 3)},
        "complete": True,
    })
    summary["checks"] = checks(summary) if checks is not None else []
    return jsonable(summary)


def write_summary(out_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    path = Path(out_dir) / SUMMARY
    path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return path


def versions() -> dict[str, str]:
    from advlab import __version__

    return {"advlab": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def jsonable(value: Any) -> Any:
    """NaN and inf become null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
