"""C&W L2's cost on the demo's settings, and its success under the NSL-KDD Domain against PGD.

Usage: .venv/bin/python benchmarks/cw_reliability.py [--part demo,nsl-kdd] [--nsl-kdd DIR]
                                                     [--nsl-kdd-n 1024]

* ``demo``: the model and samples of ``advlab demo`` (the digits small_cnn, 15 epochs on the
  28×28 upsampled digits with a 30 % test split, seed 0; the evaluation's 500 test images drawn
  with seed 0, in two batches of 250), attacked by ``carlini_wagner_l2(binary_search_steps=5,
  steps=100)`` as the demo runs it. Prints the gradients per image (counted by
  :class:`~advlab.models.wrappers.QueryCounter`), the success rate and the median L2 of the
  successes on the clean-correct images. The model is cached in ``runs/cw-demo-model``.
* ``nsl-kdd``: the NSL-KDD MLP of ``benchmarks/common.py`` and its first test rows, attacked
  under the data set's real Domain by C&W (``compare.py``'s settings: 9 × 100 steps) and by PGD
  L2 (40 steps of 2.5·eps/40, early stop) on a grid of eps. Prints C&W's success, the validity
  of its outputs and the median L2 of its successes, and, at the smallest eps where PGD's success
  rate reaches C&W's, the median L2 of PGD's successful points (the bar of issue 18).

Counts and norms only (no timing), so no benchmark lock is needed.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from common import DEFAULT_NSL_KDD, log, nsl_kdd_subject

from advlab import ThreatModel
from advlab.attacks import carlini_wagner_l2, pgd
from advlab.data import load
from advlab.evaluation import score
from advlab.models import QueryCounter, train_classifier
from advlab.models.io import load as load_model
from advlab.models.io import save

DEMO_MODEL = Path("runs/cw-demo-model")


def _median(t: torch.Tensor) -> float:
    return float(t.median()) if t.numel() else math.nan


def demo_part() -> None:
    ds = load("digits", upsample=True, test_size=0.3)
    if (DEMO_MODEL / "advlab.json").is_file():
        model, _ = load_model(DEMO_MODEL)
    else:
        log("training the demo's digits CNN (15 epochs) ...")
        torch.manual_seed(0)  # as the CLI does before training
        trained = train_classifier(ds, "small_cnn", epochs=15, lr=2e-3, batch_size=64, seed=0,
                                   val_fraction=0.0, progress=False)
        model = trained.model.eval()
        save(model, DEMO_MODEL, architecture=trained.architecture, arguments=trained.arguments)
    x_all, y_all = ds.test
    order = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0))[:500].sort()
    x, y = x_all[order.values], y_all[order.values]
    threat = ThreatModel("l2", math.inf, ds.domain)
    counter = QueryCounter(model).eval()
    outs = []
    for i in range(0, len(y), 250):
        outs.append(carlini_wagner_l2(counter, x[i:i + 250], y[i:i + 250], threat,
                                      binary_search_steps=5, steps=100))
    x_adv = torch.cat(outs)
    s = score(model, x, y, x_adv, threat)
    counted = s.clean_correct
    ok = s.success & counted
    l2 = (x_adv - x).flatten(1).norm(dim=1)
    print(f"demo C&W (5 x 100): {counter.gradients} gradients, {counter.forwards} forwards for "
          f"{len(y)} images: {counter.gradients / len(y):.1f} gradients per image; success "
          f"{float(ok.sum()) / float(counted.sum()):.1%} of {int(counted.sum())} clean-correct; "
          f"median L2 {_median(l2[ok]):.4f}")


def nsl_kdd_part(path: Path, n: int) -> None:
    subject = nsl_kdd_subject(path, n)
    if subject is None:
        return
    model, x, y, domain = subject.model, subject.x, subject.y, subject.dataset.domain
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    x, y = x[correct], y[correct]
    real = ThreatModel("l2", math.inf, domain)
    counter = QueryCounter(model).eval()
    x_adv = carlini_wagner_l2(counter, x, y, real, confidence=0.0, steps=100,
                              binary_search_steps=9, initial_const=0.01, step_size=0.01)
    s = score(model, x, y, x_adv, real)
    valid = domain.contains(x_adv, x)
    l2 = (x_adv - x).norm(dim=1)
    rate = float(s.success.float().mean())
    print(f"NSL-KDD C&W under the Domain (9 x 100) on {len(y)} clean-correct rows: success "
          f"{rate:.1%}, valid outputs {float(valid.float().mean()):.1%}, median L2 of the "
          f"successes {_median(l2[s.success]):.4f}; {counter.gradients / len(y):.1f} gradients "
          "per row")
    for eps in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0):
        threat = ThreatModel("l2", eps, domain)
        p_adv = pgd(model, x, y, threat, steps=40, step_size=2.5 * eps / 40, restarts=1,
                    random_start=True, early_stop=True, generator=torch.Generator().manual_seed(0))
        ps = score(model, x, y, p_adv, threat)
        p_l2 = (p_adv - x).norm(dim=1)[ps.success]
        p_rate = float(ps.success.float().mean())
        print(f"  PGD L2 eps {eps}: success {p_rate:.1%}, median L2 of its successes "
              f"{_median(p_l2):.4f}")
        if p_rate >= rate:
            print(f"  -> smallest eps where PGD reaches C&W's success rate: {eps}; C&W median L2 "
                  f"{_median(l2[s.success]):.4f} vs PGD {_median(p_l2):.4f}")
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="demo,nsl-kdd")
    parser.add_argument("--nsl-kdd", type=Path, default=DEFAULT_NSL_KDD, metavar="DIR")
    parser.add_argument("--nsl-kdd-n", type=int, default=1024)
    args = parser.parse_args()
    parts = args.part.split(",")
    if "demo" in parts:
        demo_part()
    if "nsl-kdd" in parts:
        nsl_kdd_part(args.nsl_kdd, args.nsl_kdd_n)


if __name__ == "__main__":
    main()
