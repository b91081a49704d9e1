"""The reactive loop: detect adversarial traffic, retrain on it, measure again.

The course's reactive defense (Biggio, Fumera, Roli, "Security Evaluation of Pattern Classifiers
under Attack", IEEE TKDE 2014): "timely detection of novel attacks, frequent classifier
retraining, verification against ground-truth labels". :func:`detect_and_retrain` runs it for
``rounds`` rounds. In each round

1. a batch of incoming traffic arrives, a mix of clean inputs and adversarial inputs that an
   attacker crafted against the *current* model (:func:`attack_traffic`, or any iterable of
   :class:`Traffic`);
2. the detector flags inputs; the round records its detection rate and false-positive rate;
3. the flagged inputs are kept with their true labels (in deployment an analyst's verdict; here
   the ground truth), accumulated over rounds;
4. the model is fine-tuned on them plus a replay of clean training data, so that it does not
   forget the clean task;
5. the detector is recalibrated (and, with ``refit_with``, refitted) on the new model;
6. clean and robust accuracy are measured before and after, against fresh white-box attacks on
   the current model: the attack the loop saw, and attacks it did not see.

Retraining can make the model *less* robust (a fine-tune on few flagged inputs can overfit
them), so each round that lowers robust accuracy on the held-out
set raises a ``RuntimeWarning``, and the model ends with the weights of the best measurement:
the highest worst-case robust accuracy over ``eval_attacks`` (the original weights count as
round ``None``), unless ``keep_last=True``.

Everything random comes from generators seeded by ``seed`` (never the global RNG), so a run is
reproducible. The model is fine-tuned *in place* (the detector reads the same model); pass a
``copy.deepcopy`` to keep the original.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from advlab.attacks import Attack
from advlab.defenses.detection import Detector
from advlab.models.training import accuracy, fit
from advlab.models.wrappers import eval_mode
from advlab.scoring import accuracy_under_attack, call_attack
from advlab.threat import ThreatModel


@dataclass(frozen=True)
class Traffic:
    """One round of incoming inputs ``x`` ``(N, *D)``, their true labels ``y`` ``(N,)`` and the
    ground truth ``adversarial`` ``(N,)`` bool (known to the experiment, not to the detector)."""

    x: Tensor
    y: Tensor
    adversarial: Tensor

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.y.shape != (n,) or self.adversarial.shape != (n,) or \
                self.adversarial.dtype != torch.bool:
            raise ValueError(f"Traffic: need y (N,) and a bool adversarial mask (N,) for N = {n}, "
                             f"got {tuple(self.y.shape)}, {self.adversarial.dtype} "
                             f"{tuple(self.adversarial.shape)}")


def attack_traffic(x: Tensor, y: Tensor, attack: Attack, threat: ThreatModel, *, n: int = 200,
                   adversarial_fraction: float = 0.5,
                   seed: int = 0) -> Callable[[nn.Module, int], Traffic]:
    """Traffic from an attacker who attacks the current model with ``attack`` under ``threat``.

    Each round draws ``n`` inputs from the pool ``(x, y)`` without replacement, and replaces a
    random ``adversarial_fraction`` of them by adversarial versions crafted against the model of
    that round (white box). The draw and the attack's ``generator`` (if it takes one) are seeded
    by ``(seed, round)``.
    """
    if not (1 <= n <= x.shape[0]) or not 0 <= adversarial_fraction <= 1:
        raise ValueError(f"attack_traffic: need 1 <= n <= {x.shape[0]} and adversarial_fraction "
                         f"in [0, 1], got {n}, {adversarial_fraction}")

    def traffic(model: nn.Module, round_index: int) -> Traffic:
        gen = _generator(seed, round_index, 1)
        idx = torch.randperm(x.shape[0], generator=gen)[:n].to(x.device)
        xs, ys = x[idx].clone(), y[idx]
        adv = torch.zeros(n, dtype=torch.bool, device=x.device)
        adv[torch.randperm(n, generator=gen)[:round(adversarial_fraction * n)].to(x.device)] = True
        if adv.any():
            xs[adv] = call_attack(attack, model, xs[adv], ys[adv], threat, generator=gen)
        return Traffic(xs, ys, adv)

    return traffic


TrafficSource = Callable[[nn.Module, int], Traffic] | Iterable[Traffic]


@dataclass
class RoundRecord:
    """What one round did and measured (rates are in [0, 1]; NaN when undefined)."""

    round: int
    n_stream: int
    n_adversarial: int
    n_flagged: int
    detection_rate: float
    false_positive_rate: float
    detection_rate_successful: float  # among the adversarial inputs that fooled the model
    stream_adversarial_accuracy: float  # the current model's accuracy on the adversarial inputs
    n_fine_tune: int
    threshold: float
    clean_accuracy_before: float
    clean_accuracy_after: float
    robust_accuracy_before: dict[str, float] = field(default_factory=dict)
    robust_accuracy_after: dict[str, float] = field(default_factory=dict)


@dataclass
class RetrainReport:
    """The per-round records of :func:`detect_and_retrain` and its settings; ``kept`` is the
    round whose weights the model holds at the end (``None``: the original weights)."""

    rounds: list[RoundRecord]
    settings: dict[str, Any]
    kept: int | None = None

    @property
    def kept_record(self) -> dict[str, Any]:
        """Clean and robust accuracy of the weights the model holds at the end."""
        if self.kept is None:
            first = self.rounds[0]
            return {"round": None, "clean_accuracy": first.clean_accuracy_before,
                    "robust_accuracy": dict(first.robust_accuracy_before)}
        r = self.rounds[self.kept]
        return {"round": r.round, "clean_accuracy": r.clean_accuracy_after,
                "robust_accuracy": dict(r.robust_accuracy_after)}

    def to_dicts(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rounds]

    def to_json(self) -> str:
        return json.dumps({"settings": self.settings, "rounds": self.to_dicts(),
                           "kept": self.kept_record}, indent=2)


def detect_and_retrain(model: nn.Module, detector: Detector, traffic: TrafficSource, *,
                       rounds: int, replay: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
                       eval_attacks: Mapping[str, tuple[Attack, ThreatModel]],
                       calibration: Tensor | None = None, fpr: float = 0.05,
                       fine_tune_epochs: int = 2, lr: float = 1e-3, batch_size: int = 64,
                       replay_ratio: float = 1.0,
                       refit_with: tuple[Attack, ThreatModel] | None = None,
                       refit_size: int = 256, seed: int = 0, keep_last: bool = False,
                       progress: bool = False) -> RetrainReport:
    """Run the reactive loop (module docstring) for ``rounds`` rounds; return its records.

    Args:
        model: the classifier, fine-tuned in place. detector: fitted on ``model``.
        traffic: ``traffic(model, round) -> Traffic`` (e.g. :func:`attack_traffic`), or an
            iterable yielding one :class:`Traffic` per round.
        replay: clean training data ``(x, y)``. Each round fine-tunes on the inputs flagged
            so far (this round's and earlier ones), with their true labels, plus
            ``replay_ratio`` clean replay samples per flagged input, drawn afresh each round.
        test: clean test data ``(x, y)`` for clean and robust accuracy.
        eval_attacks: name -> ``(attack, threat)``, run white-box on ``test`` against the model
            before and after each fine-tune and scored by :func:`advlab.scoring.score`.
        calibration: held-out clean inputs; when given, the threshold is recalibrated at ``fpr``
            after each fine-tune (the clean scores move with the model).
        fine_tune_epochs, lr, batch_size: the fine-tune (:func:`advlab.models.fit`, Adam).
        refit_with: ``(attack, threat)``: after each fine-tune, refit the detector on the new
            model, with ``refit_size`` clean replay inputs against the defender's own attack on
            them (e.g. the attack identified in the flagged traffic). ``None`` (default) keeps
            the detector and only recalibrates it. The flagged inputs themselves are not used:
            they were crafted against older models, and a detector refitted on them lost most of
            its detection rate in our runs (docs/detection.md).
        seed: seeds every generator (replay draws, fine-tune shuffling, attacks).
        keep_last: keep the last round's weights; by default the model ends with the weights
            of the best measurement on ``test`` (the highest worst-case robust accuracy over
            ``eval_attacks``; clean accuracy without them), and the detector is recalibrated
            on them (a detector refitted with ``refit_with`` keeps its last fit).
    """
    if rounds < 1 or fine_tune_epochs < 1 or replay_ratio < 0 or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"detect_and_retrain: need rounds >= 1, fine_tune_epochs >= 1, "
                         f"replay_ratio >= 0, lr > 0; got {rounds}, {fine_tune_epochs}, "
                         f"{replay_ratio}, {lr}")
    if refit_with is not None and (calibration is None or refit_size < 1):
        raise ValueError("detect_and_retrain: refit_with needs calibration inputs and "
                         f"refit_size >= 1, got refit_size {refit_size}")
    source: Callable[[nn.Module, int], Traffic] = (
        traffic if callable(traffic) else _from_iterable(iter(traffic)))
    memory_x: list[Tensor] = []
    memory_y: list[Tensor] = []
    state = _measure(model, test, eval_attacks, seed, 0)
    best = (_worst(state), None, _snapshot(model))
    records = []
    for r in tqdm(range(rounds), desc="detect-retrain", disable=not progress, leave=False):
        batch = source(model, r)
        flagged = detector.predict(batch.x).to(batch.adversarial.device)
        adv = batch.adversarial
        fooled = _misclassified(model, batch.x[adv], batch.y[adv])
        memory_x.append(batch.x[flagged])
        memory_y.append(batch.y[flagged])
        mx, my = torch.cat(memory_x), torch.cat(memory_y)
        gen = _generator(seed, r, 2)
        n_fine_tune = 0
        if mx.shape[0] > 0:
            xr, yr = _draw(replay, round(replay_ratio * mx.shape[0]), gen)
            n_fine_tune = mx.shape[0] + xr.shape[0]
            fit(model, (torch.cat([mx, xr]), torch.cat([my, yr])), epochs=fine_tune_epochs,
                lr=lr, batch_size=batch_size, seed=int(torch.randint(2**31, (), generator=gen)),
                progress=False)
            for p in model.parameters():
                p.grad = None
            if refit_with is not None:
                xc, yc = _draw(replay, refit_size, gen)
                detector.fit(xc, call_attack(refit_with[0], model, xc, yc, refit_with[1],
                                             generator=gen))
        if calibration is not None:
            detector.calibrate(calibration, fpr)
        after = _measure(model, test, eval_attacks, seed, r + 1)
        records.append(RoundRecord(
            round=r, n_stream=int(adv.numel()), n_adversarial=int(adv.sum()),
            n_flagged=int(flagged.sum()), detection_rate=_rate(flagged[adv]),
            false_positive_rate=_rate(flagged[~adv]),
            detection_rate_successful=_rate(flagged[adv][fooled]),
            stream_adversarial_accuracy=_rate(~fooled),
            n_fine_tune=n_fine_tune,
            threshold=float(detector.threshold) if detector.threshold is not None else math.nan,
            clean_accuracy_before=state[0], clean_accuracy_after=after[0],
            robust_accuracy_before=state[1], robust_accuracy_after=after[1]))
        lowered = [f"{k} {state[1][k]:.1%} -> {v:.1%}" for k, v in after[1].items()
                   if v < state[1][k]]
        if lowered:
            warnings.warn(f"detect_and_retrain: round {r} lowered robust accuracy on the "
                          f"held-out set: {', '.join(lowered)}", RuntimeWarning, stacklevel=2)
        if _worst(after) > best[0]:
            best = (_worst(after), r, _snapshot(model))
        state = after
    kept = records[-1].round
    if not keep_last and best[1] != kept:
        model.load_state_dict(best[2])
        kept = best[1]
        if calibration is not None:
            detector.calibrate(calibration, fpr)
    settings = {"rounds": rounds, "fpr": fpr, "fine_tune_epochs": fine_tune_epochs, "lr": lr,
                "batch_size": batch_size, "replay_ratio": replay_ratio,
                "refit_detector": refit_with is not None,
                "refit_size": refit_size if refit_with is not None else 0, "seed": seed,
                "keep_last": keep_last,
                "eval_attacks": {k: {"norm": t.norm, "eps": t.eps}
                                 for k, (_, t) in eval_attacks.items()}}
    return RetrainReport(records, settings, kept)


def _worst(state: tuple[float, dict[str, float]]) -> float:
    """The score a round is kept by: worst-case robust accuracy (clean accuracy without
    attacks)."""
    return min(state[1].values()) if state[1] else state[0]


def _snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _measure(model: nn.Module, test: tuple[Tensor, Tensor],
             eval_attacks: Mapping[str, tuple[Attack, ThreatModel]], seed: int,
             step: int) -> tuple[float, dict[str, float]]:
    """Clean accuracy on ``test`` and robust accuracy against each attack, for the model now."""
    x, y = test
    robust = {name: accuracy_under_attack(model, x, y, threat, attack, batch_size=len(y),
                                          generator=_generator(seed, step, 3, i))[1]
              for i, (name, (attack, threat)) in enumerate(eval_attacks.items())}
    return accuracy(model, x, y), robust


@torch.no_grad()
def _misclassified(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1024) -> Tensor:
    with eval_mode(model):
        return torch.cat([model(x[i:i + batch_size]).argmax(1) != y[i:i + batch_size]
                          for i in range(0, x.shape[0], batch_size)]
                         or [torch.zeros(0, dtype=torch.bool, device=x.device)])


def _draw(data: tuple[Tensor, Tensor], n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` rows of ``(x, y)`` drawn without replacement (all of them if ``n`` is larger)."""
    idx = torch.randperm(data[0].shape[0], generator=gen)[:n].to(data[0].device)
    return data[0][idx], data[1][idx]


def _from_iterable(it: Iterator[Traffic]) -> Callable[[nn.Module, int], Traffic]:
    def next_batch(_model: nn.Module, round_index: int) -> Traffic:
        try:
            return next(it)
        except StopIteration:
            raise ValueError(f"detect_and_retrain: traffic ran out at round {round_index}") \
                from None
    return next_batch


def _rate(mask: Tensor) -> float:
    return float(mask.double().mean()) if mask.numel() else math.nan


def _generator(seed: int, *parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(hash((seed, *parts)) & (2**63 - 1))
