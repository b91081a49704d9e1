"""The evaluation runner: every attack × eps on n samples, batched, checkpointed, resumable and
shardable over the processes of ``torchrun``.

:func:`evaluate` is where advlab's loops over data live. For each batch of samples it runs each
configured attack at each eps of its norm's grid (a minimal-norm attack runs once, unbounded,
and its per-sample minimal norms give its whole security-evaluation curve), scores every output
with the one rule of :func:`advlab.scoring.score`, and appends one JSON line with the
per-sample records of the batch to the run folder's results file. The aggregates (robust
accuracy, the per-sample worst case over attacks, norms, curves, per-class figures) are computed
from those records by :mod:`advlab.evaluation.aggregate`, never averaged across attacks.

The concepts live in their own modules: the plan (what runs on which samples, with which seeds:
:mod:`.plan`), the checkpoint store (results files: append, fingerprint, lock, resume, merge:
:mod:`.store`) and the summary (:mod:`.summary`); this module runs the plan batch by batch.

Reproducibility: the samples are drawn by a generator seeded with ``seed`` and cut into the
plan's batches, and every attack call gets its own generator seeded from ``(seed, batch, run,
eps)``. A batch is a fixed set of sample indices, so this keys every random start by the
sample's index (through its batch) and the seed, whoever computes it and whenever. A resumed
run therefore recomputes exactly the batches that were lost, and its summary is the same.

Sharding: under ``torchrun --nproc-per-node N`` (any process group of N processes) rank ``r``
runs every N-th batch of those not yet done and appends them to ``results.rank{r}.jsonl``;
after a barrier rank 0 streams the records of every file in batch order into the summary. The
batches are the very objects of a single-process run (same rows, same generators; per-row
results do not depend on the process), so ``summary.json`` is byte-identical to a
single-process run's; the timings, which measure the machine, go to ``timing.json``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from advlab.data.base import Dataset
from advlab.domain import Domain
from advlab.evaluation import cascade
from advlab.evaluation.plan import Plan, call_seed, make_plan, make_targets
from advlab.evaluation.runs import AttackRun
from advlab.evaluation.store import (
    CheckpointStore,
    FolderInUse,
    ResumeError,
    RunExists,
    StoreError,
)
from advlab.evaluation.summary import (
    SCHEMA,
    Evaluation,
    build_summary,
    read_summary,
    write_summary,
)
from advlab.models import distributed
from advlab.models.device import resolve_device
from advlab.models.wrappers import QueryCounter, eval_mode
from advlab.norms import NORMS
from advlab.scoring import call_attack, score
from advlab.threat import ThreatModel

__all__ = ["Evaluation", "ResumeError", "StoreError", "evaluate"]
STORE_ERRORS = {e.__name__: e for e in (StoreError, ResumeError, FolderInUse, RunExists)}
GALLERY_PER_RUN = 2  # successful examples kept per attack (from the first batch) for the report
EXAMPLE_DECIMALS = 4


def evaluate(model: nn.Module, dataset: Dataset,
             attacks: Iterable[Mapping[str, Any] | str | AttackRun],
             eps_grid: Mapping[str, Sequence[float]] | Sequence[float], *,
             n: int | None = 500, batch_size: int = 250, seed: int = 0,
             device: str | torch.device = "cpu", split: str = "test",
             out_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
             progress: bool = True, checks: bool = True,
             model_card: Mapping[str, Any] | None = None,
             config: Mapping[str, Any] | None = None,
             on_batch: Callable[[int], None] | None = None, compile: bool = False,
             precision: str = "fp32") -> Evaluation:
    """Evaluate ``model`` on ``n`` samples of ``dataset`` against ``attacks`` over ``eps_grid``.

    Under ``torchrun`` (an initialised process group of N processes) the batches are sharded:
    each rank runs its share and writes its own results file, and rank 0 merges them into the
    summary, which is byte for byte that of a single process (see the module docstring).

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
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; batches move there.
        split: ``"test"`` or ``"train"``.
        out_dir: where the results files, ``summary.json`` and ``timing.json`` go (nothing is
            written if None; a sharded run needs it).
        resume: continue from the complete batches already in ``out_dir``'s results files.
        overwrite: replace a run already in ``out_dir`` (otherwise it is refused).
        checks: run the sanity checks (:mod:`advlab.evaluation.checks`).
        model_card, config: recorded as given in the summary (the CLI fills them).
        on_batch: called with the batch number after each batch is written (tests use it).
        compile, precision: how the gradient passes of the attacks that take these knobs (FGSM,
            BIM, PGD) run: ``torch.compile`` and ``"bf16"``/``"fp16"`` autocast, opt-in; eager
            float32 is the default. Successes are decided and scored in float32 whatever the
            passes; both settings go into the summary's config (:mod:`.passes`). ``ValueError``
            for a precision the device cannot run.

    Returns:
        An :class:`Evaluation`; ``summary`` follows the ``advlab.evaluation/1`` schema.

    Raises:
        StoreError: ``out_dir`` holds a run (without ``resume`` or ``overwrite``), is in use by
            another process, or holds results of another configuration (:class:`ResumeError`).
    """
    started = time.perf_counter()
    device = resolve_device(device)
    plan = make_plan(dataset, attacks, eps_grid, n=n, batch_size=batch_size, seed=seed,
                     split=split, device=device, config=config, compile=compile,
                     precision=precision)
    rank, world = distributed.rank(), distributed.world_size()
    if world > 1 and out_dir is None:
        raise ValueError("evaluate: a sharded run needs out_dir (its ranks share their records "
                         "through the run folder)")
    x_all, y_all = dataset.test if split == "test" else dataset.train
    store = CheckpointStore(out_dir, plan, rank=rank, world=world,
                            num_classes=dataset.num_classes,
                            n_features=dataset.input_shape[0] if len(dataset.input_shape) == 1
                            else None)
    kept: list[dict[str, Any]] = []  # the records, when there is no folder to keep them in
    with ExitStack() as held:
        done = _start(store, held, resume=resume, overwrite=overwrite)
        mine = [b for b in range(len(plan.batches)) if b not in done][rank::world]
        bar = tqdm(total=len(mine) * len(plan.calls), desc="evaluate", unit="run",
                   disable=not progress or rank != 0, file=sys.stderr, dynamic_ncols=True)
        domain_box = dataset.domain.box()
        store.open(SCHEMA, plan.config)
        try:
            with eval_mode(model):
                for b in mine:
                    idx = plan.batches[b]
                    record = _run_batch(model, x_all[idx].to(device), y_all[idx].to(device),
                                        idx, b, plan, dataset, domain_box, seed, bar)
                    store.append(record)
                    if out_dir is None:
                        kept.append(record)
                    if on_batch is not None:
                        on_batch(b)
        finally:
            store.close()
            bar.close()
        distributed.barrier()  # every rank's records are on disk
        summary = None
        if rank == 0:
            records = kept if out_dir is None else store.records()
            summary = _summarise(records, plan, model, dataset, x_all, y_all, device, seed,
                                 split=split, checks=checks, model_card=model_card,
                                 seconds=time.perf_counter() - started, workers=world)
            if out_dir is not None:
                write_summary(out_dir, summary)
    distributed.barrier()  # the summary is written
    if summary is None:
        summary = read_summary(out_dir)  # type: ignore[arg-type]
        records = store.records()
    return Evaluation(summary, records, None if out_dir is None else Path(out_dir))


def _start(store: CheckpointStore, held: ExitStack, *, resume: bool,
           overwrite: bool) -> set[int]:
    """Rank 0 locks the folder (``held`` keeps the lock), checks it and reads what is done;
    every rank learns the outcome: the batches done, or the error every rank then raises."""
    outcome: tuple[str, Any] = ("done", [])
    if store.rank == 0:
        try:
            held.enter_context(store.locked())
            outcome = ("done", store.prepare(resume=resume, overwrite=overwrite))
        except StoreError as err:
            outcome = (type(err).__name__, str(err))
    outcome = distributed.broadcast(outcome)
    if outcome[0] != "done":
        raise STORE_ERRORS[outcome[0]](outcome[1])
    return set(outcome[1])


def _summarise(records: Iterable[dict[str, Any]], plan: Plan, model: nn.Module,
               dataset: Dataset, x_all: Tensor, y_all: Tensor, device: torch.device, seed: int,
               *, split: str, checks: bool, model_card: Mapping[str, Any] | None,
               seconds: float, workers: int) -> dict[str, Any]:
    def sanity_checks(summary: dict[str, Any]) -> list[dict[str, Any]]:
        from advlab.evaluation import checks as sanity

        probe = plan.order[:64]
        return [c.as_dict() for c in sanity.run_all(
            model, x_all[probe].to(device), y_all[probe].to(device), summary,
            generator=torch.Generator(device=device).manual_seed(seed))]

    return build_summary(records, plan, dataset, model, split=split, model_card=model_card,
                         checks=sanity_checks if checks else None, session_seconds=seconds,
                         workers=workers)


def _run_batch(model: nn.Module, x: Tensor, y: Tensor, idx: Tensor, b: int,
               plan: Plan, dataset: Dataset,
               domain_box: Domain, seed: int, bar: Any) -> dict[str, Any]:
    started = time.perf_counter()
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
        attack, extra = cascade.configured(run, eps, progress=not bar.disable)
        x_adv = call_attack(attack, counter, x, y, threat, target=target, generator=gen)
        seconds = time.perf_counter() - t0
        s = score(model, x, y, x_adv, threat, target=target)
        valid = dataset.domain.contains(x_adv, x)
        entry: dict[str, Any] = {
            "label": run.label, "eps": None if math.isinf(eps) else eps,
            "success": s.success.tolist(), "valid": valid.tolist(),
            **{p: getattr(s, p).tolist() for p in NORMS},
            "gradients": counter.gradients, "forwards": counter.forwards,
            "seconds": round(seconds, 4), **extra}
        if len(dataset.input_shape) == 1:  # tabular: which features the attack moved
            needed = s.success & s.clean_correct  # the successes the summary counts
            delta = (x_adv - x).abs() * needed[:, None]
            entry["feature_abs_delta"] = delta.sum(0).tolist()
            entry["feature_changed"] = (delta > 1e-6).sum(0).tolist()
        elif b == 0 and eps == plan.gallery_eps(run):
            entry["examples"] = _examples(model, x, y, x_adv, s.success, idx)
        record["runs"].append(entry)
        bar.update(1)
    record["seconds"] = round(time.perf_counter() - started, 4)  # volatile: timing.json only
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
