"""The evaluation runner: every attack × eps on n samples, batched, checkpointed and resumable.

:func:`evaluate` is where advlab's loops over data live. For each batch of samples it runs each
configured attack at each eps of its norm's grid (a minimal-norm attack runs once, unbounded,
and its per-sample minimal norms give its whole security-evaluation curve), scores every output
with the one rule of :func:`advlab.scoring.score`, and appends one JSON line with the
per-sample records of the batch to ``out_dir/results.jsonl``. The aggregates (robust accuracy,
the per-sample worst case over attacks, norms, curves, per-class figures) are computed from
those records by :mod:`advlab.evaluation.aggregate`, never averaged across attacks.

The concepts live in their own modules: the plan (what runs on which samples, with which seeds:
:mod:`.plan`), the checkpoint store (``results.jsonl``: append, fingerprint, resume:
:mod:`.store`) and the summary (:mod:`.summary`); this module runs the plan batch by batch.

Reproducibility: the samples are drawn by a generator seeded with ``seed``, and every attack run
gets its own generator seeded from ``(seed, batch, run, eps)``. A run resumed after an
interruption therefore recomputes exactly the batches that were lost, and its summary equals
that of an uninterrupted run (timings aside: they are measurements, not results).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from advlab.data.base import Dataset
from advlab.domain import Domain
from advlab.evaluation.plan import Plan, call_seed, make_plan, make_targets
from advlab.evaluation.runs import AttackRun
from advlab.evaluation.store import CheckpointStore, ResumeError
from advlab.evaluation.summary import SCHEMA, Evaluation, build_summary, write_summary
from advlab.models.wrappers import QueryCounter, eval_mode
from advlab.norms import NORMS
from advlab.scoring import call_attack, score
from advlab.threat import ThreatModel

__all__ = ["Evaluation", "ResumeError", "evaluate"]
GALLERY_PER_RUN = 2  # successful examples kept per attack (from the first batch) for the report
EXAMPLE_DECIMALS = 4


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
    device = torch.device(device)
    plan = make_plan(dataset, attacks, eps_grid, n=n, batch_size=batch_size, seed=seed,
                     split=split, device=device, config=config)
    x_all, y_all = dataset.test if split == "test" else dataset.train
    store = CheckpointStore(out_dir, plan.fingerprint)
    records = store.start(SCHEMA, plan.config, resume=resume)
    done = {r["batch"] for r in records}

    start = time.perf_counter()
    bar = tqdm(total=len(plan.batches) * len(plan.calls), desc="evaluate", unit="run",
               disable=not progress, file=sys.stderr, initial=len(done) * len(plan.calls),
               dynamic_ncols=True)
    domain_box = dataset.domain.box()
    with eval_mode(model):
        for b, idx in enumerate(plan.batches):
            if b in done:
                continue
            record = _run_batch(model, x_all[idx].to(device), y_all[idx].to(device), idx, b,
                                plan, dataset, domain_box, seed, bar)
            records.append(record)
            store.append(record)
            if on_batch is not None:
                on_batch(b)
    bar.close()
    records.sort(key=lambda r: r["batch"])

    def sanity_checks(summary: dict[str, Any]) -> list[dict[str, Any]]:
        from advlab.evaluation import checks as sanity

        probe = plan.order[:64]
        return [c.as_dict() for c in sanity.run_all(
            model, x_all[probe].to(device), y_all[probe].to(device), summary,
            generator=torch.Generator().manual_seed(seed))]

    summary = build_summary(records, plan, dataset, model, split=split,
                            seconds=time.perf_counter() - start, model_card=model_card,
                            checks=sanity_checks if checks else None)
    if out_dir is not None:
        write_summary(out_dir, summary)
    return Evaluation(summary, records, None if out_dir is None else Path(out_dir))


def _run_batch(model: nn.Module, x: Tensor, y: Tensor, idx: Tensor, b: int,
               plan: Plan, dataset: Dataset,
               domain_box: Domain, seed: int, bar: Any) -> dict[str, Any]:
    with torch.no_grad():
        logits = model(x)
    clean_pred = logits.argmax(1)
    record: dict[str, Any] = {
        "type": "batch", "batch": b, "index": idx.tolist(), "y": y.tolist(),
        "clean_correct": (clean_pred == y).tolist(),
        "x_l2": x.flatten(1).norm(dim=1).tolist(), "runs": []}
    counter = QueryCounter(model)
    for call in plan.calls:
        i, run, eps = call.index, call.run, call.eps
        bar.set_postfix_str(f"batch {b}, {run.label} eps={eps:g}", refresh=False)
        gen = torch.Generator(device=x.device).manual_seed(call_seed(seed, b, i, eps))
        domain = dataset.domain if run.constraints == "domain" else domain_box
        threat = ThreatModel(run.norm, eps, domain)
        target = make_targets(run, model, x, y, dataset.num_classes, gen)
        counter.reset()
        t0 = time.perf_counter()
        x_adv = call_attack(partial(run.spec.fn, **run.params), counter, x, y, threat,
                            target=target, generator=gen)
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
        elif b == 0 and eps == plan.gallery_eps(run):
            entry["examples"] = _examples(model, x, y, x_adv, s.success, idx)
        record["runs"].append(entry)
        bar.update(1)
    return record


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
