"""AutoAttack's strength and the adaptive attacks on the digits CNN (docs/autoattack.md).

Usage: .venv/bin/python benchmarks/autoattack_digits.py [--part strength|adaptive|detector|all]
       [--n 200] [--torchattacks]

Subject: the digits small_cnn (``load("digits", upsample=True)``, 28×28,
``train_classifier(data, "small_cnn", epochs=15, lr=2e-3, batch_size=64, val_fraction=0)``),
the first ``--n`` test images, seed 0 everywhere.

* strength: robust accuracy at L∞ eps 0.1 and 0.2 under PGD-40, APGD-CE and AutoAttack
  (standard), with the cascade (samples each stage removed); ``--torchattacks`` adds
  torchattacks' AutoAttack (``make compare-setup``) on the same images.
* adaptive: a quantizing preprocessor (``Quantize(0.25)``) attacked by PGD and BPDA-PGD
  (eps 0.1, 0.2, 0.3); a randomized transform (``RandomTransform(2, 0.1)``) by PGD and
  EOT-PGD (10 draws), eps 0.1.
* detector: the logits detector of docs/detection.md (fitted on PGD L∞ 0.1 of 1,000 training
  images, 5 % FPR on test images 0-149) against PGD without early stop and the detector-aware
  attack (``evade_detector``), on test images 150-449, eps 0.1 and 0.2.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

from advlab import ThreatModel
from advlab.attacks import apgd, autoattack_cascade, pgd
from advlab.attacks.adaptive import (
    Quantize,
    RandomTransform,
    bpda,
    detector_logit,
    eot,
    evade_detector,
)
from advlab.data import load
from advlab.defenses.detection import ActivationDetector
from advlab.evaluation import score
from advlab.models import train_classifier


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def robust(model: nn.Module, x, y, x_adv, threat) -> float:
    return score(model, x, y, x_adv, threat).summary()["robust_accuracy"]


def strength(model, data, n: int, with_torchattacks: bool) -> None:
    x, y = data.x_test[:n], data.y_test[:n]
    print("| eps | PGD-40 | APGD-CE | AutoAttack | cascade (removed) |"
          + (" torchattacks AutoAttack |" if with_torchattacks else ""))
    print("|---|---|---|---|---|" + ("---|" if with_torchattacks else ""))
    for eps in (0.1, 0.2):
        th = ThreatModel("linf", eps, data.domain)
        r_pgd = robust(model, x, y, pgd(model, x, y, th, steps=40, generator=seeded()), th)
        r_ce = robust(model, x, y, apgd(model, x, y, th, generator=seeded()), th)
        c = autoattack_cascade(model, x, y, th, generator=seeded())
        r_aa = robust(model, x, y, c.x_adv, th)
        stages = ", ".join(f"{s.name} {s.removed}" for s in c.stages)
        row = f"| {eps} | {r_pgd:.3f} | {r_ce:.3f} | {r_aa:.3f} | {stages} |"
        if with_torchattacks:
            import torchattacks

            ta = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard",
                                         n_classes=10, seed=0)
            row += f" {robust(model, x, y, ta(x, y), th):.3f} |"
        print(row, flush=True)


def adaptive(model, data, n: int) -> None:
    x, y = data.x_test[:n], data.y_test[:n]
    defended = nn.Sequential(Quantize(0.25), model).eval()
    through = nn.Sequential(bpda(Quantize(0.25)), model).eval()
    print("| defense | eps | clean | PGD-40 | adaptive PGD-40 |\n|---|---|---|---|---|")
    for eps in (0.1, 0.2, 0.3):
        th = ThreatModel("linf", eps, data.domain)
        print(f"| Quantize(0.25), BPDA | {eps} | {robust(defended, x, y, x, th):.3f} | "
              f"{robust(defended, x, y, pgd(defended, x, y, th, generator=seeded()), th):.3f} | "
              f"{robust(defended, x, y, pgd(through, x, y, th, generator=seeded()), th):.3f} |",
              flush=True)
    randomized = nn.Sequential(RandomTransform(2, 0.1, generator=seeded(1)), model).eval()
    th = ThreatModel("linf", 0.1, data.domain)
    plain = pgd(randomized, x, y, th, generator=seeded())
    expected = pgd(eot(randomized, n=10), x, y, th, generator=seeded())
    print(f"| RandomTransform(2, 0.1), EOT 10 | 0.1 | {robust(randomized, x, y, x, th):.3f} | "
          f"{robust(randomized, x, y, plain, th):.3f} | "
          f"{robust(randomized, x, y, expected, th):.3f} |", flush=True)


def detector(model, data) -> None:
    x_fit, y_fit = data.x_train[:1000], data.y_train[:1000]
    det = ActivationDetector(model, features="logits")
    det.fit(x_fit, pgd(model, x_fit, y_fit, ThreatModel("linf", 0.1), steps=40,
                       generator=seeded()))
    det.calibrate(data.x_test[:150], 0.05)
    x, y = data.x_test[150:450], data.y_test[150:450]
    print("| attack | eps | success | misclassified and unflagged | unflagged among successes |"
          "\n|---|---|---|---|---|")
    for eps in (0.1, 0.2):
        th = ThreatModel("linf", eps, data.domain)
        for name, x_adv in (
                ("PGD-40, no early stop", pgd(model, x, y, th, steps=40, early_stop=False,
                                              generator=seeded(1))),
                ("evade_detector (APGD on G)", evade_detector(model, detector_logit(det), x, y,
                                                              th, generator=seeded(1)))):
            ok = score(model, x, y, x_adv, th).success
            evades = ok & ~det.predict(x_adv)
            print(f"| {name} | {eps} | {ok.float().mean():.3f} | {evades.float().mean():.3f} | "
                  f"{float(evades.sum() / ok.sum().clamp_min(1)):.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="all",
                        choices=["strength", "adaptive", "detector", "all"])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--torchattacks", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = load("digits", upsample=True)
    trained = train_classifier(data, "small_cnn", epochs=15, lr=2e-3, batch_size=64,
                               val_fraction=0, seed=0, progress=False)
    model = trained.model.eval()
    print(f"digits small_cnn, test accuracy {trained.metrics['test_accuracy']:.3f}\n")
    if args.part in ("strength", "all"):
        strength(model, data, args.n, args.torchattacks)
    if args.part in ("adaptive", "all"):
        adaptive(model, data, args.n)
    if args.part in ("detector", "all"):
        detector(model, data)
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
