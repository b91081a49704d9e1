"""The reactive defense end to end, the library work behind `advlab detect`: fit a detector of
adversarial inputs on a model, calibrate its threshold, measure it on held-out data against the
attack it learnt (and an unseen one), and optionally run the detect-and-retrain loop.

The training split is cut (seeded) into three disjoint parts of ``n`` rows: the detector's
fitting set, its calibration set (clean rows only: the threshold's false-positive rate) and the
pool the retraining traffic and replay are drawn from; ``n`` test rows are the held-out set.
Detector after Metzen et al., ICLR 2017 (arXiv:1702.04267); see docs/detection.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from advlab.attacks import Attack
from advlab.data.base import Dataset
from advlab.defenses.detection import ActivationDetector, detection_metrics
from advlab.defenses.retraining import RetrainReport, attack_traffic, detect_and_retrain
from advlab.scoring import call_attack
from advlab.threat import ThreatModel


@dataclass
class DetectionStudy:
    """``metrics``: ``{"seen": {...}, "unseen": {...}}`` from :func:`detection_metrics` on the
    held-out set; ``threshold``: the calibrated threshold; ``retrain``: the loop's rounds when
    ``rounds > 0`` (the model was then fine-tuned in place)."""

    metrics: dict[str, dict[str, float]]
    threshold: float
    retrain: RetrainReport | None


def detection_study(model: nn.Module, dataset: Dataset, threat: ThreatModel,
                    attacks: Mapping[str, Attack], *, n: int = 400, fpr: float = 0.05,
                    features: Literal["activations", "logits"] = "logits", rounds: int = 0,
                    fine_tune_epochs: int = 2, seed: int = 0, keep_last: bool = False,
                    progress: bool = True) -> DetectionStudy:
    """Fit, calibrate and measure a detector; ``attacks`` maps ``"seen"`` (the attack the
    detector learns) and optionally ``"unseen"`` to configured attacks. With ``rounds``, the
    model ends with the weights of the round that was most robust on the held-out set (warning
    when a round lowered it), or of the last round with ``keep_last``
    (:func:`~advlab.defenses.retraining.detect_and_retrain`).

    Raises ``ValueError`` when the splits are too small for ``n`` (3·n training rows and n test
    rows are needed) or ``fpr`` is not in (0, 1).
    """
    if not 0 < fpr < 1:
        raise ValueError(f"detection_study: fpr must be in (0, 1), got {fpr}")
    if "seen" not in attacks:
        raise ValueError("detection_study: attacks must hold the 'seen' attack")
    x_train, y_train, x_test, y_test = dataset.x_train, dataset.y_train, dataset.x_test, \
        dataset.y_test
    if 3 * n > len(y_train) or n > len(y_test):
        raise ValueError(f"detection_study: n = {n} is too large: {len(y_train)} training "
                         f"samples (3 x n needed) and {len(y_test)} test samples")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y_train), generator=gen)
    fit_idx, cal_idx, pool_idx = order[:n], order[n:2 * n], order[2 * n:]
    test_idx = torch.randperm(len(y_test), generator=gen)[:n]

    def craft(attack: Attack, x: Tensor, y: Tensor) -> Tensor:
        return call_attack(attack, model, x, y, threat,
                           generator=torch.Generator().manual_seed(seed))

    detector = ActivationDetector(model, features=features, random_state=seed)
    detector.fit(x_train[fit_idx], craft(attacks["seen"], x_train[fit_idx], y_train[fit_idx]))
    threshold = detector.calibrate(x_train[cal_idx], fpr=fpr)
    x_held, y_held = x_test[test_idx], y_test[test_idx]
    metrics = {key: detection_metrics(detector, x_held, craft(fn, x_held, y_held))
               for key, fn in attacks.items()}
    report = None
    if rounds:
        pool = (x_train[pool_idx], y_train[pool_idx])
        report = detect_and_retrain(
            model, detector, attack_traffic(*pool, attacks["seen"], threat,
                                            n=min(n, len(pool_idx)), seed=seed),
            rounds=rounds, replay=pool, test=(x_held, y_held),
            eval_attacks={key: (fn, threat) for key, fn in attacks.items()},
            calibration=x_train[cal_idx], fpr=fpr, fine_tune_epochs=fine_tune_epochs,
            seed=seed, keep_last=keep_last, progress=progress)
    return DetectionStudy(metrics, float(threshold), report)


def describe(study: DetectionStudy) -> dict[str, Any]:
    """The study as JSON data (the ``detection.json`` of `advlab detect`)."""
    out: dict[str, Any] = {"detector": study.metrics, "threshold": study.threshold}
    if study.retrain is not None:
        out["rounds"] = study.retrain.to_dicts()
        out["kept"] = study.retrain.kept_record
    return out
