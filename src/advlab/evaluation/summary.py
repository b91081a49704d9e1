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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
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
TIMING_SCHEMA = "advlab.timing/1"
SUMMARY = "summary.json"
TIMING = "timing.json"


@dataclass
class Evaluation:
    """The result of :func:`evaluate`: the summary (the JSON truth) and the per-sample records."""

    summary: dict[str, Any]
    records: Sequence[dict[str, Any]]  # read lazily from the results files when on disk
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


def build_summary(records: Iterable[Mapping[str, Any]], plan: Plan, dataset: Dataset,
                  model: nn.Module, *, split: str, model_card: Mapping[str, Any] | None = None,
                  checks: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None,
                  session_seconds: float = 0.0, workers: int = 1) -> dict[str, Any]:
    """The summary of a complete run from its batch records (sorted by batch; one pass, so
    they may stream from disk); ``checks`` computes the sanity checks from the summary itself
    (none when ``None``).

    The volatile part (``created``, ``timing``, each row's ``seconds``: see :func:`volatile`)
    measures the machine, not the model. ``timing.seconds`` is the wall time of every batch
    in every session and rank (a resumed run counts the batches of its earlier sessions) plus
    this session's summary; ``timing.wall_seconds`` is this session's, start to end, on
    ``workers`` processes.
    """
    summary = aggregate.summarise(records, plan.runs, plan.grid, dataset)
    spent = summary.pop("timing")
    summary.update({
        "schema": SCHEMA, "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions(), "config": plan.config,
        "model_card": {"parameters": sum(p.numel() for p in model.parameters()),
                       **(dict(model_card) if model_card else {})},
        "dataset_card": aggregate.dataset_card(dataset, split, plan.n),
        "complete": True,
    })
    started = time.perf_counter()
    summary["checks"] = checks(summary) if checks is not None else []
    finish = time.perf_counter() - started
    summary["timing"] = {
        "seconds": round(spent["batch_seconds"] + finish, 3),
        "attack_seconds": round(spent["attack_seconds"], 3),
        "wall_seconds": round(session_seconds + finish, 3), "workers": workers}
    return jsonable(summary)


def volatile(summary: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(stable, volatile)``: the summary without what varies from one run of the same
    configuration to the next (``created``, ``timing`` and the rows' ``seconds``), and those
    fields (the content of ``timing.json``)."""
    stable = {k: v for k, v in summary.items() if k not in ("created", "timing")}
    stable["results"] = [{k: v for k, v in row.items() if k != "seconds"}
                         for row in summary.get("results", [])]
    moved = {"schema": TIMING_SCHEMA, "created": summary.get("created"),
             "timing": summary.get("timing"),
             "rows": [{"attack": row.get("attack"), "eps": row.get("eps"),
                       "seconds": row.get("seconds")} for row in summary.get("results", [])]}
    return stable, moved


def write_summary(out_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write ``summary.json`` (everything but the volatile fields: the same bytes for every
    run of one configuration, however many processes ran it and however often it was
    interrupted) and ``timing.json`` (the volatile fields)."""
    stable, moved = volatile(summary)
    path = Path(out_dir) / SUMMARY
    (path.parent / TIMING).write_text(json.dumps(moved, indent=2, allow_nan=False) + "\n")
    path.write_text(json.dumps(stable, indent=2, allow_nan=False) + "\n")
    return path


def read_summary(out_dir: str | Path) -> dict[str, Any]:
    """A run folder's summary with its volatile fields put back from ``timing.json`` (older
    runs kept them in ``summary.json`` itself, which then reads as it is)."""
    folder = Path(out_dir)
    source = folder / SUMMARY
    if not source.is_file():
        raise FileNotFoundError(f"no summary.json in {str(folder)!r}")
    summary = json.loads(source.read_text(encoding="utf-8"))
    if not isinstance(summary, dict):
        raise ValueError(f"{source}: must hold a JSON object, got {type(summary).__name__}")
    timing = folder / TIMING
    if timing.is_file():
        moved = json.loads(timing.read_text(encoding="utf-8"))
        if isinstance(moved, dict):
            summary["created"], summary["timing"] = moved.get("created"), moved.get("timing")
            rows = moved.get("rows") if isinstance(moved.get("rows"), list) else []
            for row, extra in zip(summary.get("results") or [], rows, strict=False):
                if isinstance(row, dict) and isinstance(extra, dict):
                    row["seconds"] = extra.get("seconds")
    return summary


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
