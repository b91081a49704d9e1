"""A synthetic evaluation summary (schema ``advlab.evaluation/1``) for the report tests: the
image and tabular variants, with every section the report can show, failing checks included.
Deterministic; built from hand-drawn 5x7 glyphs, no model or data needed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from advlab.report.html import SCHEMA

_GLYPHS = {
    0: "01110 10001 10011 10101 11001 10001 01110", 1: "00100 01100 00100 00100 00100 00100 01110",
    2: "01110 10001 00001 00010 00100 01000 11111", 3: "11110 00001 00001 01110 00001 00001 11110",
    4: "00010 00110 01010 10010 11111 00010 00010", 5: "11111 10000 11110 00001 00001 10001 01110",
    6: "00110 01000 10000 11110 10001 10001 01110", 7: "11111 00001 00010 00100 01000 01000 01000",
    8: "01110 10001 10001 01110 10001 10001 01110", 9: "01110 10001 10001 01111 00001 00010 01100",
}
# median perturbation size: a fraction of eps for budgeted attacks, absolute for minimal-norm ones
_SIZE = {"fgsm": 1.0, "pgd": 0.97, "pgd-l2": 0.92, "deepfool": 1.41, "carlini_wagner_l2": 1.23}


def _digit(d: int) -> np.ndarray:
    """A 28x28 synthetic handwritten-looking digit in [0, 1]: a 5x7 glyph, scaled and blurred."""
    bitmap = np.array([[c == "1" for c in row] for row in _GLYPHS[d].split()], dtype=float)
    img = np.zeros((28, 28))
    img[3:24, 6:21] = np.kron(bitmap, np.ones((3, 3)))
    padded = np.pad(img, 1)
    blurred = sum(padded[i:i + 28, j:j + 28] for i in range(3) for j in range(3)) / 9
    return np.clip(1.6 * blurred, 0, 1)


def _r(x: float, digits: int = 3) -> float:
    return round(float(x), digits)


def _row(label: str, name: str, norm: str, eps: float | None, robust: float, clean: float,
         n_classes: int) -> dict[str, Any]:
    """A plausible results row; the norms follow the attack's norm and budget."""
    minimal = eps is None
    size = _SIZE[label] * (1.0 if eps is None else eps)
    ratios = {"linf": (1.0, 17.0, 300.0), "l2": (0.33, 1.0, 16.0)}[norm]   # linf, l2, l1
    linf, l2, l1 = (size * r for r in ratios)
    steps = {"fgsm": 1, "deepfool": 12, "carlini_wagner_l2": 900}.get(label, 40)
    norms = {"l0": 610.0, "l1": l1, "l2": l2, "linf": linf}
    return {
        "attack": label, "name": name, "norm": norm, "eps": eps, "minimal_norm": minimal,
        "robust_accuracy": robust, "success_rate": _r(1 - robust / clean),
        **{f"median_{k}": _r(v) for k, v in norms.items()},
        **{f"mean_{k}": _r(1.06 * v) for k, v in norms.items()},
        "empirical_robustness": _r(l2 / 9.4) if minimal else None, "valid_rate": 1.0,
        "per_class_robust_accuracy": [_r(min(1.0, max(0.0, robust + 0.06 * math.sin(3 * k + 1))))
                                      for k in range(n_classes)],
        "gradients": 500 * steps, "forwards": 500 * (steps + 1),
        "seconds": _r(0.02 + 0.004 * steps),
    }


def _worst(norm: str, eps: float, robust: float, attacks: list[str],
           n_classes: int) -> dict[str, Any]:
    per_class = [_r(min(1.0, max(0.0, robust + 0.05 * math.cos(2 * k)))) for k in range(n_classes)]
    return {"norm": norm, "eps": eps, "robust_accuracy": robust, "attacks": attacks,
            "per_class_robust_accuracy": per_class}


def _checks(kind: str) -> list[dict[str, Any]]:
    def check(name: str, passed: bool, evidence: str, meaning: str,
              severity: str = "error") -> dict[str, Any]:
        return {"name": name, "passed": passed, "evidence": evidence, "meaning": meaning,
                "severity": severity}

    masked = kind == "tabular"
    return [
        check("accuracy_monotone_in_eps", True, "Robust accuracy never increases with ε.",
              "A curve that rises with ε points to gradient masking or a broken attack."),
        check("iterative_beats_single_step", not masked,
              "fgsm beats pgd at ε = 0.01 (70.9 % vs 71.2 %)." if masked else
              "pgd ≤ fgsm at every ε (26.2 % vs 51.3 % at ε = 0.1).",
              "An iterative attack weaker than one step is under-tuned or facing masked "
              "gradients.", "warning"),
        check("nonzero_gradients", not masked,
              "41 of 500 samples (8.2 %) have an all-zero input gradient." if masked else
              "0 of 500 samples have an all-zero input gradient.",
              "Possible gradient masking: attack these samples with a gradient-free method "
              "before trusting the robust accuracy."),
        check("logits_not_probabilities", True, "Outputs are unnormalised (row sums 3.1–18.4).",
              "Softmax outputs saturate the cross-entropy gradient."),
        check("inputs_in_bounds", True, "All inputs lie inside the Domain bounds.",
              "Out-of-domain inputs make every norm meaningless."),
    ]


def _gallery(rows: list[tuple[str, float | None, int, int, int, float, float]],
             ) -> list[dict[str, Any]]:
    out = []
    for attack, eps, index, label, adv_pred, clean_conf, adv_conf in rows:
        clean = _digit(label)
        rng = np.random.default_rng(index)
        delta: np.ndarray
        if eps is not None:                                     # L-inf: a sign pattern
            delta = eps * np.sign(rng.standard_normal((28, 28)))
        else:                                                   # minimal L2: smooth, small
            field = rng.standard_normal((7, 7))
            delta = np.kron(field, np.ones((4, 4))) * (clean > 0.05)
            delta *= 1.3 / (np.linalg.norm(delta) or 1.0)
        adv = np.clip(clean + delta, 0, 1)
        out.append({"attack": attack, "eps": eps, "index": index, "label": label,
                    "clean_pred": label, "clean_conf": clean_conf, "adv_pred": adv_pred,
                    "adv_conf": adv_conf, "shape": [1, 28, 28],
                    "clean": [_r(v) for v in clean.ravel()],
                    "adversarial": [_r(v) for v in adv.ravel()]})
    return out


def example_summary(kind: str = "image") -> dict[str, Any]:
    """A small synthetic, schema-complete summary: ``"image"`` (digits, with a gallery) or
    ``"tabular"`` (NSL-KDD-like, with the tabular section and failing sanity checks)."""
    if kind not in ("image", "tabular"):
        raise ValueError(f"kind must be 'image' or 'tabular', got {kind!r}")
    image = kind == "image"
    if image:
        clean, classes = 0.984, [str(d) for d in range(10)]
        grid = {"linf": [0.05, 0.1, 0.2], "l2": [0.5, 1.0, 2.0]}
        curves = {"linf": {"fgsm": [0.842, 0.513, 0.161], "pgd": [0.774, 0.262, 0.004],
                           "worst case": [0.764, 0.254, 0.002]},
                  "l2": {"pgd-l2": [0.902, 0.611, 0.097], "deepfool": [0.915, 0.652, 0.134],
                         "carlini_wagner_l2": [0.897, 0.588, 0.071],
                         "worst case": [0.889, 0.571, 0.058]}}
        attacks = [("fgsm", "fgsm", "linf", {}), ("pgd", "pgd", "linf", {"steps": 40}),
                   ("pgd-l2", "pgd", "l2", {"steps": 40}), ("deepfool", "deepfool", "l2", {}),
                   ("carlini_wagner_l2", "carlini_wagner_l2", "l2", {"steps": 100})]
        minimal = {"deepfool": 0.0, "carlini_wagner_l2": 0.002}
    else:
        clean, classes = 0.781, ["normal", "attack"]
        grid = {"linf": [0.01, 0.05, 0.1]}
        curves = {"linf": {"fgsm": [0.709, 0.402, 0.188], "pgd": [0.712, 0.371, 0.142],
                           "worst case": [0.705, 0.366, 0.139]}}
        attacks = [("fgsm", "fgsm", "linf", {}), ("pgd", "pgd", "linf", {"steps": 40})]
        minimal = {}
    n_classes = len(classes)
    results, worst, histograms, tabular = [], [], {}, {}
    rng = np.random.default_rng(0)
    for label, name, norm, _ in attacks:
        for eps in [None] if label in minimal else grid[norm]:
            robust = minimal[label] if eps is None else curves[norm][label][grid[norm].index(eps)]
            row = _row(label, name, norm, eps, robust, clean, n_classes)
            key = f"{label}@{norm}" + ("" if eps is None else f"={eps:g}")
            if not image:
                row["valid_rate"] = 0.94 if label == "fgsm" else 1.0
                tabular[key] = {"valid_rate": row["valid_rate"], "top_features": [
                    {"name": f, "mean_abs_delta": _r((eps or 0.0) * w),
                     "changed_rate": _r(min(1, 0.9 * w))}
                    for f, w in zip(_FEATURES[:8], _WEIGHTS, strict=True)]}
            results.append(row)
            values = (row[f"median_{norm}"] * rng.lognormal(0, 0.3, 60) if eps is None
                      else eps * rng.beta(6, 1.4, 60))
            histograms[key] = {"norm": norm, "values": [_r(v, 4) for v in values]}
    for norm, eps_list in grid.items():
        for i, eps in enumerate(eps_list):
            worst.append(_worst(norm, eps, curves[norm]["worst case"][i],
                                [a for a, _, nm, _ in attacks if nm == norm], n_classes))
    config = {"model": f"runs/{kind}/model", "dataset": "digits" if image else "nsl-kdd",
              "data_path": None if image else "../shared/data/nsl-kdd", "split": "test",
              "dataset_options": {"upsample": True} if image else {},
              "attacks": [{"label": a, "name": nm, "norm": no, "params": p}
                          for a, nm, no, p in attacks],
              "eps_grid": grid, "n": 500, "batch_size": 250, "seed": 0, "device": "cpu"}
    return {
        "schema": SCHEMA, "created": "2026-11-25T06:10:00Z",
        "versions": {"advlab": "0.1.0", "torch": "2.13.0+cpu", "python": "3.11.7",
                     "numpy": "2.1.3"},
        "config": config,
        "model_card": {"architecture": "small_cnn" if image else "mlp",
                       "parameters": 421642 if image else 24962, "source": config["model"],
                       "defense": None, "training": {"epochs": 15 if image else 10, "lr": 0.002,
                                                     "test_accuracy": clean}},
        "dataset_card": {"name": config["dataset"], "split": "test", "n": 500,
                         "input_shape": [1, 28, 28] if image else [len(_FEATURES)],
                         "num_classes": n_classes, "class_names": classes, "kind": kind,
                         "feature_names": None if image else list(_FEATURES),
                         "domain": "pixels in [0, 1]" if image else
                         "bounded counts and rates; one-hot protocol and flag; protocol immutable"},
        "clean_accuracy": clean, "results": results, "worst_case": worst,
        "curves": {norm: {"eps": [0.0, *grid[norm]],
                          "series": {k: [clean, *v] for k, v in series.items()}}
                   for norm, series in curves.items()},
        "checks": _checks(kind), "histograms": histograms,
        "gallery": _gallery([("pgd", 0.1, 17, 3, 5, 0.991, 0.874),
                             ("pgd", 0.1, 42, 7, 9, 0.978, 0.652),
                             ("fgsm", 0.2, 8, 4, 9, 0.995, 0.713),
                             ("deepfool", None, 23, 0, 6, 0.962, 0.508),
                             ("fgsm", 0.05, 5, 1, 1, 0.999, 0.986),
                             ("carlini_wagner_l2", None, 61, 8, 3, 0.989, 0.502)]) if image else [],
        "tabular": tabular or None, "timing": {"seconds": 84.2 if image else 12.7},
        "complete": True,
    }


_FEATURES = ("src_bytes", "dst_bytes", "duration", "dst_host_srv_count", "count",
             "same_srv_rate", "dst_host_same_src_port_rate", "serror_rate", "protocol_type=tcp",
             "flag=SF", "logged_in", "num_failed_logins")
_WEIGHTS = (0.97, 0.88, 0.71, 0.62, 0.5, 0.41, 0.33, 0.2)
