"""Biggio, Nelson, Laskov (ICML 2012) SVM injection: MNIST digit pairs with the authors' settings,
the RBF kernel on MNIST, and the paper's RBF experiment (2-D Gaussian data).

Usage:
    .venv/bin/python benchmarks/svm_injection.py [--dataset mnist|digits] [--data-path DIR]
        [--pairs 7-1,9-8,4-0] [--points 10] [--gammas 0.001,0.01,0.05]
        [--cases linear,before,rbf,gaussian] [--quick] [--seed 0] [--seeds 3] [--json PATH]

The authors' MNIST script (``main_MNIST.m`` of their Matlab code, v1.1): pixels / 255, a linear
SVM (``Gamma=[]``) with C = 1, 100 training and 500 validation images drawn from the pair
(100 in all, not per class), the test set of the pair; the attack point labelled as the pair's
second digit (``yc = -1``), started from a random validation image of the first digit; steps
of 0.05 along the unit-norm KKT gradient, projected on [0, 1], every step taken, stopping when
the validation error has not risen in 50 steps (``attack_rbf_SVM.m``: at most 500 steps).
That is ``svm_injection(schedule="fixed", step_size=0.05, max_steps=500, patience=50,
start_from="validation", start_candidates=1)``. Their MNIST experiments use the linear kernel
only; their RBF experiment is the 2-D Gaussian one (``main.m``: 25 training points per class,
classes at (±1.5, 0) with std 0.6, γ = 0.5, C = 1, step 0.15, box [-4, 4]), run here as
``gaussian``.

Cases, each injecting ``--points`` points one after another (each against the SVM poisoned by
the previous ones), test error of the SVC retrained on the training set plus the first k:

* ``linear``: the authors' MNIST setting;
* ``rbf γ (before)``: the case study's earlier RBF run, γ = 0.01, ``schedule="backtracking"``,
  step 7 % of the box diagonal, 5 starting candidates from the training set, attack class =
  the first digit;
* ``rbf γ``: the authors' schedule and start with an RBF kernel, for each γ of ``--gammas``;
* ``gaussian``: the paper's RBF experiment.

``--cases`` runs a subset of them (``before`` is ``rbf 0.01 (before)``, ``rbf`` every γ).

For every case: the mean test error against k (mean ± std over seeds and pairs), whether it
is monotone, and the largest change of the decision function on the test set caused by the
first injected point (the influence of one point: bounded by the kernel for RBF, unbounded for
the linear kernel).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.svm import SVC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import log, main_run, parser, pm, seed_list  # noqa: E402

from advlab.data import load  # noqa: E402
from advlab.domain import Domain  # noqa: E402
from advlab.poisoning import svm_injection  # noqa: E402

DATASETS = ("mnist", "digits")
CASES = ("linear", "before", "rbf", "gaussian")
PAPER = {"schedule": "fixed", "step_size": 0.05, "max_steps": 500, "patience": 50,
         "start_from": "validation", "start_candidates": 1}
BEFORE = {"schedule": "backtracking", "max_steps": 100, "start_from": "train",
          "start_candidates": 5}


def pair_split(ds: Any, a: int, b: int, n_train: int, n_val: int,
               seed: int) -> tuple[torch.Tensor, ...]:
    """Training and validation rows drawn from the training images of digits ``a`` (label 1)
    and ``b`` (label 0), and every test image of the two."""
    def take(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = (y == a) | (y == b)
        return x[m].flatten(1).double(), (y[m] == a).long()

    x, y = take(ds.x_train, ds.y_train)
    xt, yt = take(ds.x_test, ds.y_test)
    p = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    tr, va = p[:n_train], p[n_train:n_train + n_val]
    return x[tr], y[tr], x[va], y[va], xt, yt


def gaussian(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points per class: N((+1.5, 0), 0.6²) labelled 1 and N((-1.5, 0), 0.6²) labelled 0,
    clipped into the box [-4, 4]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.cat([torch.ones(n), torch.zeros(n)]).long()
    centre = torch.stack([torch.where(y == 1, 1.5, -1.5), torch.zeros(2 * n)], 1)
    x = (centre + 0.6 * torch.randn(2 * n, 2, generator=g)).clamp(-4, 4)
    return x.double(), y


def curve(p: Any, n: int, points: int, svc: dict[str, Any], xt: torch.Tensor,
          yt: torch.Tensor) -> tuple[list[float], float]:
    """Test error after 0..points injected points, and max |Δf| on the test set after one."""
    errors, decisions = [], []
    for k in range(points + 1):
        m = SVC(**svc).fit(p.x[:n + k].numpy(), p.y[:n + k].numpy())
        errors.append(float((m.predict(xt.numpy()) != yt.numpy()).mean()))
        if k <= 1:
            decisions.append(m.decision_function(xt.numpy()))
    return errors, float(np.abs(decisions[1] - decisions[0]).max())


def one_case(name: str, split: tuple[torch.Tensor, ...], *, kernel: str, gamma: float | None,
             attack_class: int, options: dict[str, Any], points: int, seed: int,
             domain: Domain | None = None) -> dict[str, Any]:
    x, y, xv, yv, xt, yt = split
    p = svm_injection(x, y, x_val=xv, y_val=yv, n_points=points,
                      kernel=kernel,  # type: ignore[arg-type]
                      gamma=gamma, attack_class=attack_class, domain=domain,
                      generator=torch.Generator().manual_seed(seed), **options)
    svc = {"kernel": kernel, "C": 1.0, **({"gamma": gamma} if gamma is not None else {})}
    errors, delta = curve(p, len(y), points, svc, xt, yt)
    log(f"{name} seed {seed}: {[round(100 * e, 1) for e in errors]} steps {p.info['steps']}")
    return {"case": name, "seed": seed, "test_error": errors, "max_delta_f": delta,
            "steps": p.info["steps"], "start_hinge": p.info["start_hinge"],
            "validation_hinge": p.info["validation_hinge"]}


def run(*, dataset: str = "mnist", data_path: Path | None = None, quick: bool = False,
        seed: int = 0, seeds: int = 3, pairs: tuple[tuple[int, int], ...] = ((7, 1), (9, 8),
                                                                          (4, 0)),
        points: int = 10, gammas: tuple[float, ...] = (0.001, 0.01, 0.05),
        cases: tuple[str, ...] = CASES) -> dict[str, Any]:
    """Every case of the module docstring (or those of ``cases``) for every seed and pair
    (quick: the first pair, 3 points, γ = 0.01 only, 2 seeds at most)."""
    if dataset not in DATASETS:
        raise ValueError(f"svm_injection: dataset must be one of {DATASETS}, got {dataset!r}")
    if not cases or set(cases) - set(CASES):
        raise ValueError(f"svm_injection: cases must be among {CASES}, got {cases!r}")
    ds = load("digits") if dataset == "digits" else load("mnist", data_path)
    n_train, n_val = (100, 500) if dataset == "mnist" else (100, 150)
    if quick:
        pairs, points, gammas, seeds = pairs[:1], 3, (0.01,), min(seeds, 2)
    rows: list[dict[str, Any]] = []
    for a, b in pairs:
        for s in seed_list(seed, seeds):
            split = pair_split(ds, a, b, n_train, n_val, s)
            tag = f"{a} vs {b}"
            if "linear" in cases:
                rows.append({"pair": tag, **one_case(
                    "linear", split, kernel="linear", gamma=None, attack_class=0,
                    options=PAPER, points=points, seed=s)})
            if "before" in cases:
                rows.append({"pair": tag, **one_case(
                    "rbf 0.01 (before)", split, kernel="rbf", gamma=0.01, attack_class=1,
                    options=BEFORE, points=points, seed=s)})
            for g in gammas if "rbf" in cases else ():
                rows.append({"pair": tag, **one_case(f"rbf {g:g}", split, kernel="rbf",
                                                     gamma=g, attack_class=0, options=PAPER,
                                                     points=points, seed=s)})
    for s in seed_list(seed, seeds) if "gaussian" in cases else ():
        x, y = gaussian(25, s)
        xv, yv = gaussian(250, 1000 + s)
        xt, yt = gaussian(500, 2000 + s)
        options = {**PAPER, "step_size": 0.15}
        rows.append({"pair": "2-D Gaussian", **one_case(
            "gaussian", (x, y, xv, yv, xt, yt), kernel="rbf", gamma=0.5, attack_class=1,
            options=options, points=points, seed=s,
            domain=Domain(lower=-4.0, upper=4.0, n_features=2))})
    cases: dict[str, Any] = {}
    for name in dict.fromkeys(r["case"] for r in rows):
        sel = [r for r in rows if r["case"] == name]
        mean = [statistics.fmean(r["test_error"][k] for r in sel) for k in range(points + 1)]
        gains = [r["test_error"][1] - r["test_error"][0] for r in sel]
        cases[name] = {"mean": mean,
                       "monotone": all(b >= a for a, b in zip(mean, mean[1:], strict=False)),
                       "first_point_gain": statistics.fmean(gains),
                       "max_delta_f": statistics.fmean(r["max_delta_f"] for r in sel)}
    mnist = bool(set(cases) - {"gaussian"})
    return {"dataset": dataset, "quick": quick,
            "pairs": [f"{a} vs {b}" for a, b in pairs] if mnist else [],
            "points": points, "paper_options": PAPER, "before_options": BEFORE,
            "rows": rows, "cases": cases}


def report(result: dict[str, Any]) -> str:
    points = result["points"]
    ks = sorted({0, 1, 2, 5, points} & set(range(points + 1)))
    data = (f"{result['dataset']}: {', '.join(result['pairs'])}" if result["pairs"] else "")
    data += ("; plus " if data else "") + "the 2-D Gaussian data" if "gaussian" in result[
        "cases"] else ""
    lines = [f"### SVM injection ({data}), test error %, mean ± std over seeds and pairs", "",
             "| case | " + " | ".join(f"{k} points" for k in ks) +
             " | monotone mean | max Δf after 1 point |",
             "|---|" + "---:|" * (len(ks) + 2)]
    for name, c in result["cases"].items():
        sel = [r for r in result["rows"] if r["case"] == name]
        lines.append(f"| {name} | " + " | ".join(pm([r["test_error"][k] for r in sel])
                                                 for k in ks) +
                     f" | {'yes' if c['monotone'] else 'no'} | {c['max_delta_f']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = parser(__doc__.splitlines()[0], DATASETS, "mnist")
    p.add_argument("--pairs", default="7-1,9-8,4-0")
    p.add_argument("--points", type=int, default=10)
    p.add_argument("--gammas", default="0.001,0.01,0.05")
    p.add_argument("--cases", default=",".join(CASES), help=f"a subset of {','.join(CASES)}")
    args = p.parse_args()
    if args.dataset == "digits":
        args.data_path = Path(".")
    pairs = tuple(tuple(int(d) for d in s.split("-")) for s in args.pairs.split(","))
    main_run(args, run, report, pairs=pairs, points=args.points,
             gammas=tuple(float(g) for g in args.gammas.split(",")),
             cases=tuple(args.cases.split(",")))


if __name__ == "__main__":
    main()
