"""advlab's AutoAttack against torchattacks' AutoAttack and adv-lib's APGD + FAB (issue 15).

Usage: .venv/bin/python benchmarks/compare_autoattack.py [--quick] [--n 200] [--repeats 3]
       [--nsl-kdd DIR] [--at-epochs 5]
       (or: .venv/bin/python benchmarks/compare.py --only autoattack)

Subjects, seed 0: the digits small_cnn (``common.digits_subject``: 28×28 upsampled digits, 5
epochs), the same CNN adversarially trained with PGD-AT at L∞ 0.1 (``adversarial_train``,
``--at-epochs``, eps warm-up over half of them) and the NSL-KDD MLP (``common.nsl_kdd_subject``),
each on its first ``--n`` test samples. Every library gets the box [0, 1] (the reference
libraries know nothing of NSL-KDD's constraints) and every output is scored with
``advlab.scoring.score`` (outside the ball or the box: not adversarial). L∞, eps 0.1 on digits,
0.05 on NSL-KDD. Per subject:

* robust accuracy of advlab ``autoattack`` (standard: APGD-CE → APGD-T → FAB-T → Square, the
  paper's budgets) with its cascade, torchattacks ``AutoAttack(version="standard")`` and the
  per-sample worst case of adv-lib's APGD-CE, APGD-T (9 targets, DLR) and FAB-T (9 targets),
  each with 100 iterations (adv-lib has no Square, nor an AutoAttack);
* advlab APGD-CE against advlab PGD at the same budget (40 steps, one restart);
* time of advlab ``autoattack`` and torchattacks ``AutoAttack`` on the same samples: the median
  of ``--repeats`` interleaved runs (advlab first in odd rounds, torchattacks in even ones).

adv-lib's package ``adv_lib.attacks`` imports torchvision (for LPIPS) in its ``__init__``; the
modules used here do not, so the package is registered without running that ``__init__``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from common import (
    DEFAULT_NSL_KDD,
    Subject,
    digits_subject,
    environment,
    fmt,
    log,
    median,
    nsl_kdd_subject,
    table,
)
from torch import Tensor

from advlab import Domain, ThreatModel
from advlab.attacks import apgd, autoattack_cascade, pgd
from advlab.scoring import score

BOX = Domain(0.0, 1.0)
EPS = {"digits": 0.1, "digits PGD-AT": 0.1, "nsl-kdd": 0.05}


def adv_lib() -> tuple[Any, Any, Any] | str:
    """adv-lib's ``apgd``, ``apgd_targeted`` and ``fab``, or the import error as text."""
    try:
        import adv_lib

        root = importlib.util.find_spec("adv_lib").submodule_search_locations[0]
        pkg = types.ModuleType("adv_lib.attacks")
        pkg.__path__ = [str(Path(root) / "attacks")]
        sys.modules.setdefault("adv_lib.attacks", pkg)
        from adv_lib.attacks.auto_pgd import apgd as a_apgd
        from adv_lib.attacks.auto_pgd import apgd_targeted
        from adv_lib.attacks.fast_adaptive_boundary import fab as a_fab

        del adv_lib
        return a_apgd, apgd_targeted, a_fab
    except Exception as err:  # noqa: BLE001 - reported in the table
        return f"{type(err).__name__}: {err}"


def pgd_at_subject(digits: Subject, epochs: int) -> Subject:
    from advlab.defenses.adversarial_training import adversarial_train
    from advlab.models import new_model

    ds = digits.dataset
    model = new_model("small_cnn", {"in_shape": list(ds.input_shape), "classes": 10}, seed=0)
    adversarial_train(model, (ds.x_train, ds.y_train), ThreatModel("linf", 0.1, ds.domain),
                      method="pgd-at", epochs=epochs, lr=2e-3, batch_size=64,
                      eps_warmup=max(1, epochs // 2), seed=0, progress=False)
    model.eval()
    with torch.no_grad():
        acc = float((model(ds.x_test).argmax(1) == ds.y_test).float().mean())
    return Subject("digits PGD-AT", model, ds, digits.x, digits.y, acc)


def robust(model: Any, x: Tensor, y: Tensor, x_adv: Tensor, th: ThreatModel) -> Tensor:
    s = score(model, x, y, x_adv, th)
    return s.clean_correct & ~s.success


def compare(subject: Subject, libs: tuple[Any, Any, Any] | str, repeats: int,
            n_classes: int) -> tuple[list[list[str]], list[str], dict[str, float]]:
    import torchattacks

    model, x, y = subject.model, subject.x, subject.y
    eps = EPS[subject.name]
    th = ThreatModel("linf", eps, BOX)
    gen = torch.Generator().manual_seed(0)
    rows: list[list[str]] = []
    clean = float((score(model, x, y, x, th).clean_correct).float().mean())
    rows.append(["clean", fmt(clean), "–", "–"])

    def ours() -> Any:
        return autoattack_cascade(model, x, y, th, generator=torch.Generator().manual_seed(0))

    def theirs() -> Tensor:
        torch.manual_seed(0)
        atk = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard",
                                      n_classes=n_classes, seed=0)
        return atk(x, y)

    times: dict[str, list[float]] = {"advlab": [], "torchattacks": []}
    outputs: dict[str, Any] = {}
    for r in range(repeats):
        order = [("advlab", ours), ("torchattacks", theirs)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            try:
                outputs[name] = fn()
            except Exception as err:  # noqa: BLE001 - a reference that raises is reported
                outputs[name] = f"{type(err).__name__}: {str(err)[:120]}"
            times[name].append(time.perf_counter() - t0)
        log(f"  {subject.name} round {r + 1}: advlab {times['advlab'][-1]:.1f} s, "
            f"torchattacks {times['torchattacks'][-1]:.1f} s")
    cascade = outputs["advlab"]
    r_ours = float(robust(model, x, y, cascade.x_adv, th).float().mean())
    stages = ", ".join(f"{s.name} −{s.removed}" for s in cascade.stages)
    speed = {"advlab": median(times["advlab"]), "torchattacks": median(times["torchattacks"])}
    rows.append(["advlab autoattack (standard)", fmt(r_ours), stages,
                 f"{speed['advlab']:.2f} s (median of {repeats})"])
    ta = outputs["torchattacks"]
    r_ta = float(robust(model, x, y, ta, th).float().mean()) if isinstance(ta, Tensor) \
        else float("nan")
    rows.append(["torchattacks AutoAttack (standard)", fmt(r_ta) if isinstance(ta, Tensor)
                 else f"raised {ta}", "–", f"{speed['torchattacks']:.2f} s (median of "
                 f"{repeats})"])
    r_al = float("nan")
    if isinstance(libs, str):
        rows.append(["adv-lib APGD-CE + APGD-T + FAB-T", f"not importable: {libs}", "–", "–"])
    else:
        a_apgd, a_apgd_t, a_fab = libs
        torch.manual_seed(0)
        left = robust(model, x, y, x, th)
        parts = []
        for name, call in (
                ("APGD-CE", lambda xs, ys: a_apgd(model, xs, ys, eps=eps, norm=float("inf"),
                                                  loss_function="ce")),
                ("APGD-T", lambda xs, ys: a_apgd_t(model, xs, ys, eps=eps, norm=float("inf"),
                                                   num_targets=min(9, n_classes - 1))),
                ("FAB-T", lambda xs, ys: a_fab(model, xs, ys, norm=float("inf"),
                                               restarts=min(9, n_classes - 1),
                                               targeted_restarts=True))):
            idx = left.nonzero()[:, 0]
            if idx.numel() == 0:
                parts.append(f"{name} −0")
                continue
            try:
                out = call(x[idx], y[idx]).detach()
            except Exception as err:  # noqa: BLE001
                parts.append(f"{name} raised {type(err).__name__}: {str(err)[:80]}")
                continue
            broken = ~robust(model, x[idx], y[idx], out, th)
            left[idx[broken]] = False
            parts.append(f"{name} −{int(broken.sum())}")
        r_al = float(left.float().mean())
        rows.append(["adv-lib APGD-CE + APGD-T + FAB-T", fmt(r_al), ", ".join(parts), "–"])
    r_pgd = float(robust(model, x, y, pgd(model, x, y, th, steps=40, generator=gen), th)
                  .float().mean())
    r_ce = float(robust(model, x, y, apgd(model, x, y, th, loss="ce", steps=40, generator=gen),
                        th).float().mean())
    rows.append(["advlab PGD-40 (1 restart)", fmt(r_pgd), "–", "–"])
    rows.append(["advlab APGD-CE, 40 steps (1 restart)", fmt(r_ce), "–", "–"])
    verdicts = [
        f"{'met' if r_ours <= r_ta else 'NOT met'} | {subject.name} | advlab autoattack "
        f"{fmt(r_ours)} ≤ torchattacks AutoAttack {fmt(r_ta)}",
        f"{'met' if r_ours <= r_al else 'NOT met'} | {subject.name} | advlab autoattack "
        f"{fmt(r_ours)} ≤ adv-lib APGD + FAB {fmt(r_al)}",
        f"{'met' if r_ce <= r_pgd else 'NOT met'} | {subject.name} | advlab APGD-CE-40 "
        f"{fmt(r_ce)} ≤ advlab PGD-40 {fmt(r_pgd)}",
        f"{'met' if speed['torchattacks'] >= 2 * speed['advlab'] else 'NOT met'} | "
        f"{subject.name} | torchattacks / advlab time "
        f"{speed['torchattacks'] / speed['advlab']:.2f}× (bar ≥ 2×)"]
    return rows, verdicts, speed


def run(nsl_kdd: Path, *, quick: bool = False, n: int = 200, repeats: int = 3,
        at_epochs: int = 5) -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    n = 16 if quick else n
    repeats = 1 if quick else repeats
    libs = adv_lib()
    print("# AutoAttack: advlab vs torchattacks and adv-lib\n")
    print(f"torchattacks {version('torchattacks')}, adv-lib {version('adv-lib')}; "
          f"{environment()}\n")
    log("training the digits small_cnn ...")
    digits = digits_subject(n)
    log("adversarially training the digits small_cnn (PGD-AT, L∞ 0.1) ...")
    subjects = [digits, pgd_at_subject(digits, 1 if quick else at_epochs)]
    nsl = nsl_kdd_subject(nsl_kdd, n)
    if nsl is not None:
        subjects.append(nsl)
    verdicts: list[str] = []
    for subject in subjects:
        log(f"{subject.name}: {len(subject.x)} samples ...")
        rows, checks, _ = compare(subject, libs, repeats, subject.num_classes)
        verdicts += checks
        print(f"## {subject.name} (test accuracy {subject.test_accuracy:.3f}), L∞ eps "
              f"{EPS[subject.name]}, first {len(subject.x)} test samples\n")
        print(table(["attack", "robust accuracy", "cascade (samples removed)", "time"], rows,
                    "lrll") + "\n", flush=True)
    print("## Bars (issue 15)\n")
    print(table(["verdict", "subject", "measure"], [v.split(" | ", 2) for v in verdicts],
                "lll"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 samples, 1 round")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--at-epochs", type=int, default=5)
    parser.add_argument("--nsl-kdd", type=Path, default=DEFAULT_NSL_KDD, metavar="DIR")
    args = parser.parse_args()
    started = time.perf_counter()
    run(args.nsl_kdd, quick=args.quick, n=args.n, repeats=args.repeats,
        at_epochs=args.at_epochs)
    log(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
