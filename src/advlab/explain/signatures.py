"""SHAP-signature detection of adversarial inputs (Fidel, Bitton, Shabtai, "When Explainability
Meets Adversarial Learning: Detecting Adversarial Examples using SHAP Signatures", IJCNN 2020;
arXiv:1909.03418).

The *SHAP signature* of an input is the matrix of SHAP values of every class's output with
respect to the neurons of an internal layer of the classifier: here by default the last hidden
layer, with DeepLIFT-SHAP against a background of training inputs (our choices). Clean and
adversarial inputs have different signatures; a classifier trained on signatures of both
detects adversarial inputs, including those of attacks it did not see in training. Here the
detector is a :class:`~advlab.defenses.detection.FeatureDetector`, so it has the library's
detector interface: ``fit``, ``score``, ``calibrate``, ``predict`` and
:func:`~advlab.defenses.detection.detection_metrics`.

A threshold calibrated for a target false-positive rate keeps it only on clean inputs drawn like
the calibration rows. :func:`calibration_shift` measures this: it calibrates on one clean set and
reports the false-positive rate on others (e.g. held-out training rows, and a shifted test set
such as NSL-KDD's KDDTest+); :func:`split_rows` draws a calibration half from the deployment
data itself. docs/xai-security.md reports both on NSL-KDD and KDD Cup 99.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from advlab.defenses.detection import Classifier, Detector, FeatureDetector
from advlab.explain.attributions import _find_layer, deeplift_shap, gradient_shap

SignatureMethod = Literal["deeplift_shap", "gradient_shap"]


class ShapSignatureDetector(FeatureDetector):
    """Detector on SHAP signatures (Fidel et al. 2019; module docstring).

    Features of an input: the SHAP values of each class's logit (all ``K`` classes, in class
    order, so the signature does not depend on the prediction) with respect to the input of
    ``layer``, flattened to ``K × H``. ``layer`` defaults to the last ``nn.Linear`` of the model,
    whose input is the last hidden layer (an internal layer, as in the paper); ``layer="input"``
    explains the raw features instead (useful for tabular data, where they are interpretable).

    Args:
        model: a classifier returning logits ``(N, K)``; not copied (refit after changing it).
        background: ``(B, *D)`` clean reference inputs (e.g. 32 training rows): the SHAP
            expectation is taken over them.
        layer: a module, its name, ``None`` (last linear layer's input) or ``"input"``.
        method: ``"deeplift_shap"`` (deterministic; what the SHAP library's DeepExplainer
            computes) or
            ``"gradient_shap"`` (``n_samples`` draws, seeded by ``random_state``).
        batch_size: inputs per attribution call.
        classifier, C, hidden, random_state: see :class:`FeatureDetector` (default an MLP, as
            the paper's detector is a neural network).
    """

    def __init__(self, model: nn.Module, *, background: Tensor,
                 layer: nn.Module | str | None = None,
                 method: SignatureMethod = "deeplift_shap", n_samples: int = 16,
                 batch_size: int = 256, classifier: Classifier = "mlp",
                 C: float = 1.0, hidden: int = 64, random_state: int = 0) -> None:  # noqa: N803
        super().__init__(classifier=classifier, C=C, hidden=hidden, random_state=random_state)
        if method not in ("deeplift_shap", "gradient_shap"):
            raise ValueError(f"ShapSignatureDetector: method must be 'deeplift_shap' or "
                             f"'gradient_shap', got {method!r}")
        if not isinstance(model, nn.Module):
            raise ValueError(f"ShapSignatureDetector: model must be an nn.Module, got "
                             f"{type(model).__name__}")
        if not isinstance(background, Tensor) or background.dim() < 2 or background.shape[0] < 2:
            raise ValueError("ShapSignatureDetector: background must be a tensor (B, *D) with "
                             f"B >= 2, got {tuple(getattr(background, 'shape', ()))}")
        if n_samples < 1 or batch_size < 1:
            raise ValueError(f"ShapSignatureDetector: need n_samples, batch_size >= 1, got "
                             f"{n_samples}, {batch_size}")
        self.model, self.background = model, background.detach()
        self.layer: nn.Module | None = None if layer == "input" else \
            _find_layer("ShapSignatureDetector", model, layer, nn.Linear)
        self.method, self.n_samples, self.batch_size = method, n_samples, batch_size

    def features(self, x: Tensor) -> Tensor:
        """``(N, K·H)`` SHAP signatures (float32, detached)."""
        with torch.no_grad():
            k = self.model(x[:1]).shape[1]
        gen = torch.Generator().manual_seed(self.random_state)
        per_class = []
        for c in range(k):
            if self.method == "deeplift_shap":
                phi = deeplift_shap(self.model, x, c, background=self.background,
                                    layer=self.layer, batch_size=self.batch_size)
            else:
                phi = gradient_shap(self.model, x, c, background=self.background,
                                    n_samples=self.n_samples, layer=self.layer,
                                    batch_size=self.batch_size, generator=gen)
            per_class.append(phi.flatten(1).float())
        return torch.cat(per_class, 1)


def split_rows(n: int, fraction: float, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A seeded random split of ``range(n)``: ``round(fraction * n)`` sorted indices, and the
    sorted rest (e.g. a calibration half of the deployment data, and the half it is scored on).
    """
    if n < 2 or not 0 < fraction < 1:
        raise ValueError(f"split_rows: need n >= 2 and fraction in (0, 1), got {n}, {fraction!r}")
    k = min(max(round(fraction * n), 1), n - 1)
    order = torch.randperm(n, generator=generator)
    return order[:k].sort().values, order[k:].sort().values


def calibration_shift(detector: Detector, calibration: Tensor, held_out: Mapping[str, Tensor], *,
                      fpr: float = 0.05) -> dict[str, float]:
    """Calibrate ``detector`` for ``fpr`` on the clean rows ``calibration``, then measure the
    false-positive rate on every clean set of ``held_out``.

    On rows drawn like ``calibration`` the measured rate stays at or below ``fpr`` up to
    sampling error (binomial, ``sqrt(fpr (1 - fpr) / n)``); a clearly higher rate on a set is
    evidence that its clean rows come from a shifted distribution.

    Args:
        detector: a fitted :class:`~advlab.defenses.detection.Detector`; its threshold is set
            here (``detector.calibrate``).
        calibration: ``(N, *D)`` clean inputs the detector was not fitted on.
        held_out: name -> ``(M, *D)`` clean inputs, none of them in ``calibration``.
        fpr: the target false-positive rate, in [0, 1).

    Returns:
        ``{"threshold", "target_fpr", "calibration_fpr", "fpr:<name>" for every set}``.
    """
    if not held_out:
        raise ValueError("calibration_shift: held_out is empty; give at least one clean set")
    threshold = detector.calibrate(calibration, fpr=fpr)
    out = {"threshold": threshold, "target_fpr": float(fpr),
           "calibration_fpr": float(detector.predict(calibration).double().mean())}
    for name, x in held_out.items():
        if not isinstance(x, Tensor) or x.shape[0] == 0:
            raise ValueError(f"calibration_shift: held_out[{name!r}] must be a non-empty tensor")
        out[f"fpr:{name}"] = float(detector.predict(x).double().mean())
    return out
