"""The evaluation runner: every attack × eps on n samples, batched, checkpointed and resumable.

:func:`evaluate` is where advlab's loops over data live. For each batch of samples it runs each
configured attack at each eps of its norm's grid (a minimal-norm attack runs once, unbounded,
and its per-sample minimal norms give its whole security-evaluation curve), scores every output
with the one rule of :func:`advlab.evaluation.score`, and appends one JSON line with the
per-sample records of the batch to ``out_dir/results.jsonl``. The aggregates (robust accuracy,
the per-sample worst case over attacks, norms, curves, per-class figures) are computed from
those records by :mod:`advlab.evaluation.aggregate`, never averaged across attacks.

Reproducibility: the samples are drawn by a generator seeded with ``seed``, and every attack run
gets its own generator seeded from ``(seed, batch, run, eps)``. A run resumed after an
interruption therefore recomputes exactly the batches that were lost, and its summary equals
that of an uninterrupted run (timings aside: they are measurements, not results).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from advlab.attacks import targets as target_makers
from advlab.data.base import Dataset
from advlab.domain import Domain
from advlab.evaluation import aggregate
from advlab.evaluation.runs import AttackRun, build_runs, normalise_eps_grid
from advlab.evaluation.score import score
from advlab.models.wrappers import QueryCounter, eval_mode
from advlab.norms import NORMS
from advlab.threat import ThreatModel

SCHEMA = "advlab.evaluation/1"
RESULTS, SUMMARY = "results.jsonl", "summary.json"
GALLERY_PER_RUN = 2  # successful examples kept per attack (from the first batch) for the report
EXAMPLE_DECIMALS = 4


class ResumeError(ValueError):
    """``results.jsonl`` belongs to another configuration, or is not an advlab results file."""


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


def evaluate(model: nn.Module, dataset: Dataset,
             attacks: Iterable[Mapping[str, Any] | str | AttackRun],
             eps_grid: Mapping[str, Sequence[float]] | Sequence[float], *,
             n: int | None = 500, batch_size: int = 250, seed: int = 0,
             device: str | torch.device = "cpu", split: str = "test",
             out_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
             checks: bool = True, model_card: Mapping[str, Any] | None = None,
             config: Mapping[str, Any] | None = None,
             on_batch: Callable[[int], None] | None = None) -> Evaluation:
    """Evaluate ``model`` on ``n`` samples of ``dataset`` against ``attacks`` over ``eps_grid``.

    Args:
        model: returns logits; evaluated in eval mode (its mode is restored afterwards).
        dataset: an :class:`advlab.data.Dataset`; its Domain constrains the attacks.
        attacks: attack names, ``{"name": ..., "norm": ..., knob: value}`` dicts (a TOML
            ``[[attack]]`` table) or :class:`AttackRun` objects.
        eps_grid: ``{norm: [eps, ...]}``, or a list when every attack has the same norm.
        n: number of samples, drawn without replacement by a generator seeded with ``seed``
            (``None``: the whole split).
        batch_size: samples per batch; one JSON line of records is written per batch.
        seed: seeds the sample draw and, mixed with the batch and run, every attack's generator.
        split: ``"test"`` or ``"train"``.
        out_dir: where ``results.jsonl`` and ``summary.json`` go (nothing is written if None).
        resume: continue from the complete batches already in ``out_dir/results.jsonl``.
        checks: run the sanity checks (:mod:`advlab.evaluation.checks`).
        model_card, config: recorded as given in the summary (the CLI fills them).
        on_batch: called with the batch number after each batch is written (tests use it).

    Returns:
        An :class:`Evaluation`; ``summary`` follows the ``advlab.evaluation/1`` schema.
    """
    runs = build_runs(attacks)
    grid = normalise_eps_grid(eps_grid, runs)
    if split not in ("test", "train"):
        raise ValueError(f"evaluate: split must be 'test' or 'train', not {split!r}")
    if batch_size < 1:
        raise ValueError(f"evaluate: batch_size must be >= 1, got {batch_size}")
    x_all, y_all = dataset.test if split == "test" else dataset.train
    total = int(y_all.shape[0])
    if n is None:
        n = total
    if not 1 <= n <= total:
        raise ValueError(f"evaluate: n must be in [1, {total}] for the {split} split of "
                         f"{dataset.name}, got {n}")
    device = torch.device(device)
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
    plan = _plan(runs, grid)
    run_config = {
        "dataset": dataset.name, "split": split, "n": n, "batch_size": batch_size, "seed": seed,
        "device": str(device), "attacks": [r.as_dict() for r in runs], "eps_grid": grid,
        **(dict(config) if config else {}),
    }
    fingerprint = _fingerprint(run_config, order)
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]

    results_path = None if out_dir is None else Path(out_dir) / RESULTS
    records: list[dict[str, Any]] = []
    if results_path is not None:
        results_path.parent.mkdir(parents=True, exist_ok=True)
        if resume and results_path.exists():
            records = _read_records(results_path, fingerprint)
        else:
            if results_path.exists() and not resume:
                results_path.unlink()
            _append(results_path, {"type": "header", "schema": SCHEMA,
                                   "fingerprint": fingerprint, "config": run_config})
    done = {r["batch"] for r in records}

    start = time.perf_counter()
    steps = len(batches) * len(plan)
    bar = tqdm(total=steps, desc="evaluate", unit="run", disable=not progress, file=sys.stderr,
               initial=len(done) * len(plan), dynamic_ncols=True)
    domain_box = Domain(dataset.domain.lower, dataset.domain.upper, n_features=dataset.domain
                        .n_features)
    with eval_mode(model):
        for b, idx in enumerate(batches):
            if b in done:
                continue
            x = x_all[idx].to(device)
            y = y_all[idx].to(device)
            record = _run_batch(model, x, y, idx, b, plan, dataset, domain_box, seed, bar)
            records.append(record)
            if results_path is not None:
                _append(results_path, record)
            if on_batch is not None:
                on_batch(b)
    bar.close()
    records.sort(key=lambda r: r["batch"])

    summary = aggregate.summarise(records, runs, grid, dataset)
    summary.update({
        "schema": SCHEMA, "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions(), "config": run_config,
        "model_card": {"parameters": sum(p.numel() for p in model.parameters()),
                       **(dict(model_card) if model_card else {})},
        "dataset_card": aggregate.dataset_card(dataset, split, n),
        "timing": {"seconds": round(time.perf_counter() - start, 3),
                   "attack_seconds": round(sum(run["seconds"] for r in records
                                                for run in r["runs"]), 3)},
        "complete": True,
    })
    if checks:
        from advlab.evaluation import checks as sanity

        probe = order[:64]
        gen = torch.Generator().manual_seed(seed)
        summary["checks"] = [c.as_dict() for c in sanity.run_all(
            model, x_all[probe].to(device), y_all[probe].to(device), summary, generator=gen)]
    else:
        summary["checks"] = []
    summary = _jsonable(summary)
    if out_dir is not None:
        path = Path(out_dir) / SUMMARY
        path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return Evaluation(summary, records, None if out_dir is None else Path(out_dir))


def _plan(runs: Sequence[AttackRun], grid: Mapping[str, list[float]]
          ) -> list[tuple[int, AttackRun, float]]:
    """(run index, run, eps) for every attack call of a batch; minimal-norm runs are unbounded."""
    plan = []
    for i, run in enumerate(runs):
        for eps in ([math.inf] if run.minimal_norm else grid[run.norm]):
            plan.append((i, run, eps))
    return plan


def _run_batch(model: nn.Module, x: Tensor, y: Tensor, idx: Tensor, b: int,
               plan: Sequence[tuple[int, AttackRun, float]], dataset: Dataset,
               domain_box: Domain, seed: int, bar: Any) -> dict[str, Any]:
    with torch.no_grad():
        logits = model(x)
    clean_pred = logits.argmax(1)
    record: dict[str, Any] = {
        "type": "batch", "batch": b, "index": idx.tolist(), "y": y.tolist(),
        "clean_correct": (clean_pred == y).tolist(),
        "x_l2": x.flatten(1).norm(dim=1).tolist(), "runs": []}
    counter = QueryCounter(model)
    for i, run, eps in plan:
        bar.set_postfix_str(f"batch {b}, {run.label} eps={eps:g}", refresh=False)
        gen = torch.Generator(device=x.device).manual_seed(_seed(seed, b, i, eps))
        domain = dataset.domain if run.constraints == "domain" else domain_box
        threat = ThreatModel(run.norm, eps, domain)
        target = _targets(run, model, x, y, dataset.num_classes, gen)
        kwargs = dict(run.params)
        if target is not None:
            kwargs["target"] = target
        if "generator" in inspect.signature(run.spec.fn).parameters:
            kwargs["generator"] = gen
        counter.reset()
        t0 = time.perf_counter()
        x_adv = run.spec.fn(counter, x, y, threat, **kwargs)
        seconds = time.perf_counter() - t0
        s = score(model, x, y, x_adv, threat, target=target)
        valid = dataset.domain.contains(x_adv, x)
        entry: dict[str, Any] = {
            "label": run.label, "eps": None if math.isinf(eps) else eps,
            "success": s.success.tolist(), "valid": valid.tolist(),
            **{p: getattr(s, p).tolist() for p in NORMS},
            "gradients": counter.gradients, "forwards": counter.forwards,
            "seconds": round(seconds, 4)}
        if len(dataset.input_shape) == 1:  # tabular: which features the attack moved
            needed = s.success & s.clean_correct  # the successes the summary counts
            delta = (x_adv - x).abs() * needed[:, None]
            entry["feature_abs_delta"] = delta.sum(0).tolist()
            entry["feature_changed"] = (delta > 1e-6).sum(0).tolist()
        elif b == 0 and eps == _gallery_eps(run, plan):
            entry["examples"] = _examples(model, x, y, x_adv, s.success, idx)
        record["runs"].append(entry)
        bar.update(1)
    return record


def _gallery_eps(run: AttackRun, plan: Sequence[tuple[int, AttackRun, float]]) -> float:
    """The eps whose examples go into the gallery: the middle of the run's grid."""
    values = [e for _, r, e in plan if r.label == run.label]
    return values[len(values) // 2]


def _examples(model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor, success: Tensor,
              idx: Tensor) -> list[dict[str, Any]]:
    chosen = success.nonzero().flatten()[:GALLERY_PER_RUN]
    if chosen.numel() == 0:
        return []
    with torch.no_grad():
        p_clean = model(x[chosen]).softmax(1)
        p_adv = model(x_adv[chosen]).softmax(1)
    out = []
    for k, j in enumerate(chosen.tolist()):
        out.append({
            "index": int(idx[j]), "label": int(y[j]),
            "clean_pred": int(p_clean[k].argmax()), "clean_conf": round(float(p_clean[k].max()), 4),
            "adv_pred": int(p_adv[k].argmax()), "adv_conf": round(float(p_adv[k].max()), 4),
            "shape": list(x.shape[1:]),
            "clean": np.round(x[j].flatten().cpu().numpy().astype(float), EXAMPLE_DECIMALS)
            .tolist(),
            "adversarial": np.round(x_adv[j].flatten().cpu().numpy().astype(float),
                                    EXAMPLE_DECIMALS).tolist()})
    return out


def _targets(run: AttackRun, model: nn.Module, x: Tensor, y: Tensor, num_classes: int,
             gen: torch.Generator) -> Tensor | None:
    if run.target is None:
        return None
    if run.target == "random":
        return target_makers.random(y, num_classes, generator=gen)
    if run.target == "next":
        return target_makers.next(y, num_classes)
    return target_makers.least_likely(model, x, y)


def _seed(seed: int, batch: int, run: int, eps: float) -> int:
    """A generator seed for one attack call, mixed from the run's coordinates (reproducible)."""
    mix = np.random.SeedSequence([seed, batch, run, int(np.float64(eps).view(np.uint64)
                                                         if math.isfinite(eps) else 0)])
    return int(mix.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _fingerprint(config: Mapping[str, Any], order: Tensor) -> str:
    text = json.dumps(config, sort_keys=True) + ",".join(map(str, order.tolist()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _append(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line and flush it to disk, so a kill loses at most the batch in flight."""
    with path.open("a") as f:
        f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_records(path: Path, fingerprint: str) -> list[dict[str, Any]]:
    """The complete batch records of ``path``; a torn last line is cut off the file."""
    good: list[dict[str, Any]] = []
    keep = 0
    header = None
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                break  # a line torn by the interruption: it and anything after are dropped
            if not line.endswith(b"\n"):
                break
            if number == 1:
                header = item
                if item.get("type") != "header":
                    raise ResumeError(f"{path}:1: not an advlab results file (no header line)")
                if item.get("fingerprint") != fingerprint:
                    raise ResumeError(f"{path}:1: written by a different configuration "
                                      "(attacks, eps, samples or seed changed); remove the file "
                                      "or use another output folder")
            elif item.get("type") == "batch":
                good.append(item)
            keep += len(line)
    if header is None:
        raise ResumeError(f"{path}: empty or unreadable; cannot resume")
    with path.open("r+b") as f:
        f.truncate(keep)
    return good


def versions() -> dict[str, str]:
    from advlab import __version__

    return {"advlab": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _jsonable(value: Any) -> Any:
    """NaN and inf become null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
