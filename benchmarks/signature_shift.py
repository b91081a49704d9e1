"""Fidel et al. (2019) SHAP-signature detector: why NSL-KDD's false-positive rate misses its target.

Usage:
    .venv/bin/python benchmarks/signature_shift.py [--dataset nsl-kdd|kddcup99|tuandromd]
        [--data-path PATH] [--quick] [--seed 0] [--seeds 3] [--json PATH]

Per seed: the data set's MLP (``train_classifier(data, "mlp", epochs=5, seed)``); a
``ShapSignatureDetector`` fitted on ``n_fit`` clean training rows and their PGD-20 versions
(L∞ eps 0.1 under the Domain; TUANDROMD: L1 eps 5, at most five added features); background 32
training rows. Disjoint clean sets: ``n_cal`` training rows to calibrate on, ``n_hold`` other
held-out training rows, and ``n_test`` test rows split at random into a calibration half and an
evaluation half (:func:`advlab.explain.split_rows`). Two thresholds for 5 % FPR
(:func:`advlab.explain.calibration_shift`):

* *train-calibrated* (the case study's protocol): false positives on held-out training rows and
  on the evaluation half of the test rows; their scores' two-sample Kolmogorov-Smirnov
  statistic; on NSL-KDD the false positives by kind of test row (normal, attack types seen in
  the training file, attack types only in the test file);
* *test-calibrated*: the same threshold calibrated on the test calibration half.

Detection rate (PGD-20 on the evaluation half) at both thresholds, and ROC-AUC. KDD Cup 99's
training split (370,515 records) is subsampled to 25,192 rows (seeded, stratified), the size of
NSL-KDD's KDDTrain+_20Percent; its test split is a random split of the same file, so it is
drawn like the training rows: the control for the NSL-KDD shift.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import log, main_run, parser, pm, seed_list, summarize  # noqa: E402

from advlab import ThreatModel  # noqa: E402
from advlab.attacks import pgd  # noqa: E402
from advlab.data import Dataset, load  # noqa: E402
from advlab.defenses.detection import detection_metrics  # noqa: E402
from advlab.explain import ShapSignatureDetector, calibration_shift, split_rows  # noqa: E402
from advlab.explain.robust_features import adversarial_set  # noqa: E402
from advlab.models import train_classifier  # noqa: E402

DATASETS = ("nsl-kdd", "kddcup99", "tuandromd")
FULL = {"n_fit": 1000, "n_cal": 1000, "n_hold": 1000, "n_test": 4000}
QUICK = {"n_fit": 400, "n_cal": 500, "n_hold": 500, "n_test": 1000}


def threat_for(data: Dataset) -> ThreatModel:
    if data.name == "tuandromd":
        return ThreatModel("l1", 5.0, data.domain)
    return ThreatModel("linf", 0.1, data.domain)


def nsl_kdd_kinds(path: Path) -> tuple[list[str], set[str]]:
    """The attack name of every KDDTest+ row (in file order, as the loader keeps them) and the
    set of names in the training file. Read here for the breakdown only."""
    def names(file: Path) -> list[str]:
        return [line.rsplit(",", 2)[1] for line in file.read_text().splitlines() if line.strip()]

    return names(path / "KDDTest+.txt"), set(names(path / "KDDTrain+_20Percent.txt"))


def subsample(data: Dataset, n: int, *, seed: int) -> Dataset:
    """``data`` with a seeded stratified ``n`` of its training rows (test rows unchanged)."""
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(torch.arange(len(data.y_train)).numpy(), train_size=n,
                              random_state=seed, stratify=data.y_train.numpy())
    keep = torch.from_numpy(idx)
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])


def one_seed(data: Dataset, seed: int, sizes: dict[str, int],
             kinds: list[str] | None, known: set[str] | None) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    model = train_classifier(data, "mlp", epochs=5, seed=seed, progress=False).model
    threat = threat_for(data)
    attack = functools.partial(pgd, steps=20)
    order = torch.randperm(len(data.x_train), generator=gen)
    n_fit, n_cal, n_hold = sizes["n_fit"], sizes["n_cal"], sizes["n_hold"]
    fit_idx = order[:n_fit]
    cal_idx = order[n_fit:n_fit + n_cal]
    hold_idx = order[n_fit + n_cal:n_fit + n_cal + n_hold]
    background = data.x_train[order[-32:]]
    test_idx = torch.randperm(len(data.x_test), generator=gen)[:sizes["n_test"]]
    half_cal, half_eval = split_rows(len(test_idx), 0.5, generator=gen)
    t_cal, t_eval = test_idx[half_cal], test_idx[half_eval]

    det = ShapSignatureDetector(model, background=background, random_state=seed)
    x_fit, y_fit = data.x_train[fit_idx], data.y_train[fit_idx]
    det.fit(x_fit, adversarial_set(model, x_fit, y_fit, threat, attack, seed=seed))
    x_eval, y_eval = data.x_test[t_eval], data.y_test[t_eval]
    x_adv = adversarial_set(model, x_eval, y_eval, threat, attack, seed=seed + 1)
    x_hold, x_tcal = data.x_train[hold_idx], data.x_test[t_cal]

    out: dict[str, Any] = {"seed": seed, "fooled": float((model(x_adv).argmax(1) != y_eval)
                                                       .float().mean())}
    train_cal = calibration_shift(det, data.x_train[cal_idx],
                                  {"train_held_out": x_hold, "test": x_eval}, fpr=0.05)
    m = detection_metrics(det, x_eval, x_adv)
    out.update({"train_cal:fpr_train_held_out": train_cal["fpr:train_held_out"],
                "train_cal:fpr_test": train_cal["fpr:test"],
                "train_cal:detection_rate": m["detection_rate"], "roc_auc": m["roc_auc"]})
    from scipy.stats import ks_2samp

    s_hold, s_test = det.score(x_hold).numpy(), det.score(x_eval).numpy()
    out["ks_train_vs_test"] = float(ks_2samp(s_hold, s_test).statistic)
    if kinds is not None and known is not None:
        flagged = det.predict(x_eval)
        names = [kinds[int(i)] for i in t_eval]
        groups = {"normal": [n == "normal" for n in names],
                  "seen_attack": [n != "normal" and n in known for n in names],
                  "novel_attack": [n != "normal" and n not in known for n in names]}
        for g, mask in groups.items():
            mt = torch.tensor(mask)
            out[f"share:{g}"] = float(mt.double().mean())
            out[f"train_cal:fpr_{g}"] = float(flagged[mt].double().mean()) if mt.any() else \
                float("nan")
    test_cal = calibration_shift(det, x_tcal, {"train_held_out": x_hold, "test": x_eval},
                                 fpr=0.05)
    m = detection_metrics(det, x_eval, x_adv)
    out.update({"test_cal:fpr_train_held_out": test_cal["fpr:train_held_out"],
                "test_cal:fpr_test": test_cal["fpr:test"],
                "test_cal:detection_rate": m["detection_rate"]})
    log(f"signatures {data.name} seed {seed}: " + ", ".join(
        f"{k} {v:.3f}" for k, v in out.items() if isinstance(v, float)))
    return out


def run(*, dataset: str = "nsl-kdd", data_path: Path, quick: bool = False, seed: int = 0,
        seeds: int = 3) -> dict[str, Any]:
    """The figures of the module docstring, per seed and as mean ± std over ``seeds`` seeds."""
    if dataset not in DATASETS:
        raise ValueError(f"signature_shift: dataset must be one of {DATASETS}, got {dataset!r}")
    data = load(dataset, data_path)
    if dataset == "kddcup99":
        data = subsample(data, 25192, seed=0)
    sizes = QUICK if quick else FULL
    kinds, known = nsl_kdd_kinds(Path(data_path)) if dataset == "nsl-kdd" else (None, None)
    if kinds is not None and len(kinds) != len(data.x_test):
        raise ValueError(f"{data_path}: {len(kinds)} test names for {len(data.x_test)} rows")
    per_seed = [one_seed(data, s, sizes, kinds, known) for s in seed_list(seed, seeds)]
    return {"dataset": dataset, "quick": quick, "sizes": sizes, "target_fpr": 0.05,
            "threat": {"norm": threat_for(data).norm, "eps": threat_for(data).eps},
            "per_seed": per_seed, "summary": summarize(per_seed)}


def report(result: dict[str, Any]) -> str:
    rows = result["per_seed"]

    def col(key: str) -> str:
        return pm([r[key] for r in rows])

    lines = [f"### SHAP signatures on {result['dataset']}: 5 % FPR target, {len(rows)} seeds "
             f"(mean ± std, %)", "",
             "| threshold calibrated on | FPR, held-out train rows | FPR, test rows | "
             "detection rate (PGD-20) |", "|---|---:|---:|---:|",
             f"| training rows | {col('train_cal:fpr_train_held_out')} | "
             f"{col('train_cal:fpr_test')} | {col('train_cal:detection_rate')} |",
             f"| half of the test rows | {col('test_cal:fpr_train_held_out')} | "
             f"{col('test_cal:fpr_test')} | {col('test_cal:detection_rate')} |", "",
             f"ROC-AUC {pm([r['roc_auc'] for r in rows], 1, 3)}; PGD fooled the model on "
             f"{col('fooled')} % of the evaluation rows; KS statistic of the clean scores, "
             f"held-out train vs test: {pm([r['ks_train_vs_test'] for r in rows], 1, 3)}."]
    if "share:normal" in rows[0]:
        lines += ["", "| test rows (train-calibrated threshold) | share of rows | FPR |",
                  "|---|---:|---:|"]
        for g in ("normal", "seen_attack", "novel_attack"):
            lines.append(f"| {g.replace('_', ' ')} | {col('share:' + g)} | "
                         f"{col('train_cal:fpr_' + g)} |")
    return "\n".join(lines)


def main() -> None:
    args = parser(__doc__.splitlines()[0], DATASETS, "nsl-kdd").parse_args()
    main_run(args, run, report)


if __name__ == "__main__":
    main()
