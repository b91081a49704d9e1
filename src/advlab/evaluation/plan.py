"""The plan of an evaluation: which attack runs at which eps on which samples, with which seed.

:func:`make_plan` checks the whole configuration before any work starts (attacks and their
knobs, the eps grid, ``n``, ``batch_size``, the split), draws the samples with a generator
seeded by ``seed``, cuts them into batches and fingerprints the lot, so that a resumed run can
tell whether a results file is its own; ``config["coverage"]`` records which attack ran at which
norm of the grid and why the others did not (:func:`~advlab.evaluation.runs.norm_coverage`).
Every attack call gets its own generator seed mixed from ``(seed, batch, run, eps)``
(:func:`call_seed`): a batch recomputed after an interruption draws exactly the random starts it
drew the first time.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from advlab.attacks import targets as target_makers
from advlab.data.base import Dataset
from advlab.evaluation.passes import apply_passes
from advlab.evaluation.runs import AttackRun, build_runs, norm_coverage, normalise_eps_grid
from advlab.norms import NORMS


@dataclass(frozen=True)
class AttackCall:
    """One attack call made on every batch: run ``index`` of the plan at ``eps`` (``inf`` for
    a minimal-norm run, whose per-sample norms give its whole curve)."""

    index: int
    run: AttackRun
    eps: float


@dataclass(frozen=True)
class Plan:
    """What :func:`advlab.evaluation.evaluate` runs; ``config`` is recorded in the summary."""

    runs: list[AttackRun]
    grid: dict[str, list[float]]
    calls: list[AttackCall]
    order: Tensor  # the sample indices of the split, sorted
    batches: list[Tensor]
    config: dict[str, Any]
    fingerprint: str

    @property
    def n(self) -> int:
        return int(self.order.numel())

    def gallery_eps(self, run: AttackRun) -> float:
        """The eps whose examples go into the report's gallery: the middle of the run's grid."""
        values = [c.eps for c in self.calls if c.run.label == run.label]
        return values[len(values) // 2]


def make_plan(dataset: Dataset, attacks: Iterable[Mapping[str, Any] | str | AttackRun],
              eps_grid: Mapping[str, Sequence[float]] | Sequence[float], *, n: int | None,
              batch_size: int, seed: int, split: str, device: torch.device,
              config: Mapping[str, Any] | None = None, compile: bool = False,
              precision: str = "fp32") -> Plan:
    """Check the configuration and draw the samples (``n=None``: the whole split); ``compile``
    and ``precision``: the gradient passes of the attacks that take them (:mod:`.passes`)."""
    runs = apply_passes(build_runs(attacks), compile=compile, precision=precision, device=device)
    grid = normalise_eps_grid(eps_grid, runs)
    if split not in ("test", "train"):
        raise ValueError(f"evaluate: split must be 'test' or 'train', not {split!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"evaluate: batch_size must be an integer >= 1, got {batch_size!r}")
    total = int((dataset.y_test if split == "test" else dataset.y_train).shape[0])
    n = total if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= total:
        raise ValueError(f"evaluate: n must be in [1, {total}] for the {split} split of "
                         f"{dataset.name}, got {n!r}")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
    calls = [AttackCall(i, run, eps) for i, run in enumerate(runs)
             for eps in ([math.inf] if run.minimal_norm else grid[run.norm])]
    run_config = {
        "dataset": dataset.name, "split": split, "n": n, "batch_size": batch_size, "seed": seed,
        "device": device.type, "attacks": [r.as_dict() for r in runs], "eps_grid": grid,
        "compile": compile, "precision": precision,
        **(dict(config) if config else {}),
    }
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    fingerprint = _fingerprint(run_config, order)  # coverage follows from runs and grid
    given = eps_grid if isinstance(eps_grid, Mapping) else grid
    run_config["coverage"] = norm_coverage(runs, [k for k in given if k in NORMS])
    return Plan(runs, grid, calls, order, batches, run_config, fingerprint)


def call_seed(seed: int, batch: int, run: int, eps: float) -> int:
    """A generator seed for one attack call, mixed from the run's coordinates (reproducible)."""
    mix = np.random.SeedSequence([seed, batch, run, int(np.float64(eps).view(np.uint64)
                                                         if math.isfinite(eps) else 0)])
    return int(mix.generate_state(1, np.uint64)[0] >> np.uint64(1))


def make_targets(run: AttackRun, model: nn.Module, x: Tensor, y: Tensor, num_classes: int,
                 generator: torch.Generator) -> Tensor | None:
    """The run's target classes for one batch (``None``: untargeted)."""
    if run.target is None:
        return None
    if run.target == "random":
        return target_makers.random(y, num_classes, generator=generator)
    if run.target == "next":
        return target_makers.next(y, num_classes)
    return target_makers.least_likely(model, x, y)


def _fingerprint(config: Mapping[str, Any], order: Tensor) -> str:
    text = json.dumps(config, sort_keys=True) + ",".join(map(str, order.tolist()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
