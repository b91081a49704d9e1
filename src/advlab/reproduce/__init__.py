"""``advlab reproduce``: the headline figure of every paper behind the course (PAPERS.md), the
paper's figure beside advlab's, with seeds, spread and a verdict.

One small module per paper row; each has its protocol in its docstring (the paper, the table or
figure, what is scaled down and why), module constants ``PAPER`` (the citation), ``CLAIM`` (the
paper's figure) and ``DATASETS`` (the data sets its protocol allows, the default first), and a
``run(config) -> dict`` (see :mod:`advlab.reproduce.outcome` for the dict). :data:`EXPERIMENTS`
names each module; modules are imported only when an experiment runs, so listing them is
instant. :func:`~advlab.reproduce.runner.run_experiments` runs a selection with a per-experiment
cache (``DIR/<name>.json`` with the configuration's fingerprint), so an interrupted run resumes.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from advlab.reproduce.config import Config

__all__ = ["EXPERIMENTS", "Config", "experiment"]

_HERE = "advlab.reproduce."
EXPERIMENTS: dict[str, str] = {name: _HERE + module for name, module in (
    ("fgsm", "fgsm"),
    ("bim", "bim"),
    ("pgd-madry", "pgd_madry"),
    ("jsma", "jsma"),
    ("deepfool", "deepfool"),
    ("carlini-wagner", "carlini_wagner"),
    ("distillation", "distillation"),
    ("distillation-broken", "distillation_broken"),
    ("blackbox-substitute", "blackbox"),
    ("transferability", "transferability"),
    ("label-noise", "label_noise"),
    ("svm-injection", "svm_injection"),
    ("badnets", "badnets"),
    ("fast-at-trades", "fast_at_trades"),
    ("autoattack", "autoattack"),
    ("square-hopskipjump", "query_attacks"),
    ("grad-cam", "grad_cam"),
    ("shap-additivity", "shap_additivity"),
    ("dalex", "dalex"),
    ("robust-features", "robust_features"),
    ("xai-fine-tuning", "xai_fine_tuning"),
    ("shap-signatures", "shap_signatures"),
    ("xai-guided-attack", "xai_guided"),
    ("nsl-kdd-baselines", "nsl_kdd_baselines"),
    ("malware-add-only", "malware_add_only"),
)}


def experiment(name: str) -> ModuleType:
    """The module of experiment ``name`` (imported now)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name])
