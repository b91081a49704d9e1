"""Defensive distillation and the Carlini–Wagner lesson, end to end (docs/distillation.md).

Usage: .venv/bin/python benchmarks/distillation_case_study.py [--n 450] [--temperature 100]
       [--epochs 15] [--lr 2e-3] [--distill-epochs 30] [--distill-lr 2e-3] [--seed 0]
       [--out runs/distillation] [--reuse]

On the 28×28 upsampled digits, it trains

* the standard CNN: ``train_classifier(data, "small_cnn", epochs, lr, batch_size=64,
  val_fraction=0, seed)``;
* the distilled CNN: ``distill(data, "small_cnn", temperature, epochs=distill_epochs,
  lr=distill_lr, batch_size=64, seed)`` (teacher and student alike);

then attacks both on the first ``n`` test images (450 = the whole test split) and scores every
output with ``advlab.scoring.score`` (success among the images the model classifies
correctly): FGSM L∞ (cross-entropy through the softmax, and the C&W margin on the logits),
JSMA (targeted, random targets from a generator seeded with ``seed``, differentiating the
softmax as in the 2016 paper, and the logits: JSMA-Z); and runs
``advlab.evaluation.checks.model_checks`` on the first 64. Both models are saved first (the
student with its ``defense`` record, by ``Distilled.save``) and attacked as reloaded from their
folders. Then the full ``advlab.evaluation.evaluate`` (FGSM at L∞ 0.1, 0.2, 0.5 and C&W L2 with
``binary_search_steps=5``, with the sanity checks) runs on the same ``n`` images of each model,
writing ``<out>/{standard,distilled}/eval/{summary.json,report.html}``; the C&W figures come
from it. The tables go to stdout, and everything to ``<out>/case_study.json``. ``--reuse``
loads the models an earlier run saved and resumes its evaluations where they stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from common import environment, log, table
from torch import Tensor, nn

from advlab.attacks import fgsm, jsma, targets
from advlab.data import load
from advlab.defenses.distillation import distill
from advlab.evaluation import evaluate
from advlab.evaluation.checks import model_checks
from advlab.models import load as load_model
from advlab.models import save, train_classifier
from advlab.report import write_report
from advlab.scoring import score
from advlab.threat import ThreatModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=450)
    parser.add_argument("--temperature", type=float, default=100.0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--distill-epochs", type=int, default=30)
    parser.add_argument("--distill-lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/distillation"))
    parser.add_argument("--reuse", action="store_true",
                        help="load the two models an earlier run saved in --out instead of "
                             "training them, and resume its interrupted evaluations")
    args = parser.parse_args()

    data = load("digits", upsample=True)
    start = time.perf_counter()
    models, metrics, defense = trained_models(data, args)
    x, y = data.x_test[:args.n], data.y_test[:args.n]
    target = targets.random(y, data.num_classes,
                            generator=torch.Generator().manual_seed(args.seed))
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                               "environment": environment(), "models": {}, "evaluate": {}}
    for name, model in models.items():
        log(f"attacking the {name} model ...")
        results["models"][name] = {**metrics[name], **study(model, x, y, target, data.domain)}
        (args.out / "case_study.json").write_text(json.dumps(results, indent=2) + "\n")

    for name, model in models.items():
        log(f"advlab.evaluation.evaluate on the {name} model ...")
        card = {"source": str(args.out / name / "model"), "architecture": "small_cnn",
                "defense": defense if name == "distilled" else None}
        out = args.out / name / "eval"
        ev = evaluate(model, data, ["fgsm", {"name": "carlini_wagner_l2",
                                             "binary_search_steps": 5}],
                      {"linf": [0.1, 0.2, 0.5], "l2": [1.0, 2.0]}, n=args.n, batch_size=150,
                      seed=args.seed, out_dir=out, resume=args.reuse, progress=False,
                      model_card=card)
        write_report(out)
        summary = ev.summary
        results["evaluate"][name] = {
            "rows": [{k: r[k] for k in ("attack", "norm", "eps", "robust_accuracy",
                                        "success_rate", "median_l2")}
                     for r in summary["results"]],
            "failed_checks": [c for c in summary["checks"] if not c["passed"]],
            "defense": summary["model_card"].get("defense"),
            "seconds": summary["timing"]["seconds"]}
    results["seconds"] = round(time.perf_counter() - start, 1)
    (args.out / "case_study.json").write_text(json.dumps(results, indent=2) + "\n")
    print(report(results, args))


def trained_models(data: Any, args: argparse.Namespace
                   ) -> tuple[dict[str, nn.Module], dict[str, dict[str, float]], dict[str, Any]]:
    """Train (or, with ``--reuse``, load) the standard and the distilled CNN; save both with
    their sidecars. Returns the models, their test accuracies and the distillation record."""
    folders = {name: args.out / name / "model" for name in ("standard", "distilled")}
    if not args.reuse:
        log("training the standard CNN ...")
        standard = train_classifier(data, "small_cnn", epochs=args.epochs, lr=args.lr,
                                    batch_size=64, val_fraction=0, seed=args.seed,
                                    progress=False)
        log(f"  test accuracy {standard.metrics['test_accuracy']:.4f}; distilling at "
            f"T = {args.temperature:g} ...")
        distilled = distill(data, "small_cnn", temperature=args.temperature,
                            epochs=args.distill_epochs, lr=args.distill_lr, batch_size=64,
                            seed=args.seed, progress=False)
        log(f"  teacher {distilled.metrics['teacher_test_accuracy']:.4f}, student "
            f"{distilled.metrics['test_accuracy']:.4f}")
        options = {"upsample": True, "seed": 0}
        distilled.save(folders["distilled"], dataset=data, dataset_options=options)
        save(standard.model, folders["standard"], architecture="small_cnn",
             arguments=standard.arguments, metrics=standard.metrics, training=standard.settings,
             dataset={"name": data.name, "path": None, "options": options, "info": data.info,
                      "input_shape": list(data.input_shape)},
             class_names=list(data.class_names), seed=args.seed)
    # both are attacked as `advlab evaluate --model <folder>` would load them
    (standard_model, standard_card), (student, card) = (load_model(folders[n])
                                                        for n in ("standard", "distilled"))
    metrics = {"standard": {"test_accuracy": standard_card["metrics"]["test_accuracy"]},
               "distilled": {"test_accuracy": card["metrics"]["test_accuracy"],
                             "teacher_test_accuracy": card["metrics"]["teacher_test_accuracy"],
                             "temperature": card["defense"]["temperature"]}}
    return {"standard": standard_model, "distilled": student}, metrics, card["defense"]


def study(model: nn.Module, x: Tensor, y: Tensor, target: Tensor, domain: Any) -> dict[str, Any]:
    """Logit scale, attack success (among clean-correct images) and the model checks."""
    with torch.no_grad():
        logits = model(x)
    top = logits.topk(2, dim=1).values
    out: dict[str, Any] = {
        "clean_accuracy": float((logits.argmax(1) == y).float().mean()),
        "median_top2_logit_gap": float((top[:, 0] - top[:, 1]).median()),
        "saturated_softmax": float((logits.softmax(1).amax(1) == 1.0).float().mean()),
        "attacks": {}}
    linf = {eps: ThreatModel("linf", eps, domain) for eps in (0.1, 0.2)}
    l0 = ThreatModel("l0", math.inf, domain)
    runs: dict[str, tuple[Callable[..., Tensor], ThreatModel, Tensor | None]] = {
        **{f"FGSM L∞ {e:g} (CE through the softmax)": (fgsm, t, None) for e, t in linf.items()},
        **{f"FGSM L∞ {e:g} (C&W margin on logits)": (partial(fgsm, loss="margin"), t, None)
           for e, t in linf.items()},
        "JSMA γ=0.15, targeted (softmax F, the 2016 paper)":
            (partial(jsma, gamma=0.15), l0, target),
        "JSMA-Z γ=0.15, targeted (logits Z)": (partial(jsma, gamma=0.15, use_logits=True), l0,
                                               target),
    }
    for label, (attack, threat, tgt) in runs.items():
        t0 = time.perf_counter()
        kwargs = {} if tgt is None else {"target": tgt}
        x_adv = attack(model, x, y, threat, **kwargs)
        s = score(model, x, y, x_adv, threat, tgt)
        ok = s.success[s.clean_correct]
        out["attacks"][label] = {
            "success_rate": float(ok.float().mean()), "successes": int(ok.sum()),
            "clean_correct": int(s.clean_correct.sum()),
            "median_l0": float(s.l0[s.success].median()) if s.success.any() else None,
            "seconds": round(time.perf_counter() - t0, 1)}
        log(f"  {label}: {out['attacks'][label]['success_rate']:.3f}")
    out["checks"] = [c.as_dict() for c in model_checks(model, x[:64], y[:64])]
    return out


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    std, dis = results["models"]["standard"], results["models"]["distilled"]
    pct = lambda v: "–" if v is None or v != v else f"{100 * v:.1f} %"  # noqa: E731
    rows = [["test accuracy (450 images)", pct(std["test_accuracy"]), pct(dis["test_accuracy"])],
            ["median top-1 − top-2 logit gap", f"{std['median_top2_logit_gap']:.1f}",
             f"{dis['median_top2_logit_gap']:.1f}"],
            ["softmax exactly 1.0 in float32", pct(std["saturated_softmax"]),
             pct(dis["saturated_softmax"])]]
    for label in std["attacks"]:
        a, b = std["attacks"][label], dis["attacks"][label]
        rows.append([f"{label}: success", f"{pct(a['success_rate'])} ({a['successes']}/"
                     f"{a['clean_correct']})", f"{pct(b['success_rate'])} ({b['successes']}/"
                     f"{b['clean_correct']})"])
    cw = [next(r for r in results["evaluate"][m]["rows"]
               if r["attack"] == "carlini_wagner_l2" and r["eps"] is None)
          for m in ("standard", "distilled")]
    rows.append(["C&W L2, binary_search_steps=5 (logits; from evaluate): success",
                 *(pct(r["success_rate"]) for r in cw)])
    rows.append(["C&W L2: median L2 of the successes",
                 *("–" if r["median_l2"] is None else f"{r['median_l2']:.3f}" for r in cw)])
    for name in ("gradients_nonzero", "gradient_agrees_with_finite_differences"):
        cells = []
        for m in (std, dis):
            c = next(c for c in m["checks"] if c["name"] == name)
            cells.append("passed" if c["passed"] else f"FAILED ({c['severity']})")
        rows.append([f"check {name}", *cells])
    lines = [f"Defensive distillation case study, T = {args.temperature:g} "
             f"({results['environment']}; {results['seconds']} s)", "",
             f"teacher test accuracy {pct(dis['teacher_test_accuracy'])}", "",
             table(["", "standard", f"distilled (T = {args.temperature:g})"], rows, "lrr"), ""]
    for name, ev in results["evaluate"].items():
        lines.append(f"advlab.evaluation.evaluate, {name} model (defense: "
                     f"{(ev['defense'] or {}).get('method')}):")
        lines.append(table(["attack", "norm", "eps", "robust accuracy", "success", "median L2"],
                           [[r["attack"], r["norm"], "min" if r["eps"] is None else r["eps"],
                             pct(r["robust_accuracy"]), pct(r["success_rate"]),
                             "–" if r["median_l2"] is None else f"{r['median_l2']:.3f}"]
                            for r in ev["rows"]], "llrrrr"))
        failed = [f"{c['name']} ({c['severity']}): {c['evidence']}" for c in ev["failed_checks"]]
        lines += ["failed checks: " + ("; ".join(failed) if failed else "none"), ""]
    for name in ("standard", "distilled"):
        c = next(c for c in results["models"][name]["checks"] if c["name"] == "gradients_nonzero")
        lines.append(f"gradients_nonzero, {name}: {c['evidence']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
