"""Run-time detection of adversarial inputs: a reactive defense (Biggio et al., "Security
Evaluation of Pattern Classifiers under Attack", IEEE TKDE 2014: timely detection, then
retraining; see :mod:`advlab.defenses.retraining`).

A detector is fitted on clean and adversarial inputs, gives every input a score (higher = more
likely adversarial), and flags the inputs whose score exceeds a threshold chosen on held-out
clean inputs for a target false-positive rate. :class:`Detector` is the interface;
:class:`FeatureDetector` trains a scikit-learn classifier on any per-input feature vector, and
:class:`ActivationDetector` takes the features from the protected model itself: its hidden
activations (Metzen et al., ICLR 2017) or its logits. Related detectors: Grosse et al. ("On the
(Statistical) Detection of Adversarial Examples", 2017; arXiv:1702.06280) add an "adversarial"
class to the classifier, and Feinman et al. (arXiv:1703.00410) estimate densities of the last
hidden layer. An attribution-signature detector (Fidel, Bitton, Shabtai 2019; arXiv:1909.03418)
is one more ``FeatureDetector`` whose features are attributions.

Caveat: Carlini and Wagner ("Adversarial Examples Are Not Easily Detected: Bypassing Ten
Detection Methods", AISec 2017; arXiv:1705.07263) bypass all ten detectors they study,
Metzen's included, with attacks that know the detector. A detector evaluated only against the
attack it was trained on measures that attack, not robustness: see docs/detection.md.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from advlab.models.wrappers import eval_mode

Features = Literal["logits", "activations"]
Classifier = Literal["logistic", "mlp"]


class Detector(ABC):
    """The detector interface. Subclasses implement ``fit`` and ``score``; ``calibrate`` and
    ``predict`` are shared.

    Attributes:
        threshold: inputs with ``score > threshold`` are flagged; ``None`` until fitted or
            calibrated.
        target_fpr: the false-positive rate of the last :meth:`calibrate`, else ``None``.
    """

    threshold: float | None = None
    target_fpr: float | None = None

    @abstractmethod
    def fit(self, clean: Tensor, adversarial: Tensor) -> Detector:
        """Learn to separate ``clean`` ``(N, *D)`` from ``adversarial`` ``(M, *D)``; return self."""

    @abstractmethod
    def score(self, x: Tensor) -> Tensor:
        """``(N,)`` float scores, higher = more likely adversarial."""

    def calibrate(self, clean: Tensor, fpr: float = 0.05) -> float:
        """Set and return ``threshold`` so that at most ``floor(fpr * N)`` of the held-out clean
        inputs ``clean`` ``(N, *D)`` are flagged (ties can only flag fewer).

        Use clean inputs that the detector was *not* fitted on: on its own training data a
        detector looks better than it is, and the threshold would let more clean inputs through.
        """
        if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or \
                not (math.isfinite(fpr) and 0 <= fpr < 1):
            raise ValueError(f"{type(self).__name__}.calibrate: fpr must be in [0, 1), got {fpr!r}")
        scores = self.score(clean).double().sort(descending=True).values
        if scores.numel() == 0:
            raise ValueError(f"{type(self).__name__}.calibrate: no clean inputs")
        k = int(math.floor(fpr * scores.numel() + 1e-9))
        # exactly the k highest scores lie strictly above scores[k], unless they tie with it
        self.threshold, self.target_fpr = float(scores[k]), float(fpr)
        return self.threshold

    def predict(self, x: Tensor) -> Tensor:
        """``(N,)`` bool: ``score(x) > threshold``."""
        if self.threshold is None:
            raise RuntimeError(f"{type(self).__name__}: fit or calibrate before predict")
        return self.score(x) > self.threshold


class FeatureDetector(Detector):
    """A scikit-learn classifier on a per-input feature vector, clean (0) vs adversarial (1).

    Subclasses implement :meth:`features`. The classifier is standardisation followed by a
    logistic regression (``"logistic"``) or a one-hidden-layer MLP (``"mlp"``), seeded by
    ``random_state``; the score is its log-odds of "adversarial", so :meth:`fit` leaves
    ``threshold = 0`` (probability 1/2) until :meth:`calibrate` picks one for a target FPR.

    Args:
        classifier: ``"logistic"`` or ``"mlp"``. C: inverse L2 penalty of the logistic
            regression (``alpha = 1/C`` for the MLP). hidden: MLP width.
        random_state: seed of the classifier (solver and initialisation).
    """

    def __init__(self, *, classifier: Classifier = "logistic", C: float = 1.0,  # noqa: N803
                 hidden: int = 64, random_state: int = 0) -> None:
        if classifier not in ("logistic", "mlp"):
            raise ValueError(f"classifier must be 'logistic' or 'mlp', got {classifier!r}")
        if not (C > 0 and hidden >= 1):
            raise ValueError(f"need C > 0 and hidden >= 1, got {C!r}, {hidden!r}")
        self.classifier, self.C, self.hidden = classifier, float(C), int(hidden)
        self.random_state = int(random_state)
        self.pipeline_: Any = None

    @abstractmethod
    def features(self, x: Tensor) -> Tensor:
        """``(N, F)`` float features of the inputs ``x`` ``(N, *D)``, detached."""

    def _new_pipeline(self) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.classifier == "logistic":
            head: Any = LogisticRegression(C=self.C, max_iter=2000,
                                           random_state=self.random_state)
        else:
            head = MLPClassifier(hidden_layer_sizes=(self.hidden,), alpha=1.0 / self.C,
                                 max_iter=500, early_stopping=False,
                                 random_state=self.random_state)
        return make_pipeline(StandardScaler(), head)

    def fit(self, clean: Tensor, adversarial: Tensor) -> FeatureDetector:
        name = type(self).__name__
        for label, t in (("clean", clean), ("adversarial", adversarial)):
            if not isinstance(t, Tensor) or t.dim() < 2 or t.shape[0] == 0:
                raise ValueError(f"{name}.fit: {label} must be a non-empty (N, *D) tensor, got "
                                 f"shape {tuple(getattr(t, 'shape', ()))}")
        if clean.shape[1:] != adversarial.shape[1:]:
            raise ValueError(f"{name}.fit: clean inputs {tuple(clean.shape[1:])} and adversarial "
                             f"inputs {tuple(adversarial.shape[1:])} differ in shape")
        feats = torch.cat([self.features(clean), self.features(adversarial)])
        labels = np.r_[np.zeros(clean.shape[0]), np.ones(adversarial.shape[0])]
        with _one_blas_thread():
            self.pipeline_ = self._new_pipeline().fit(_numpy(feats), labels)
        self.threshold, self.target_fpr = 0.0, None
        return self

    def score(self, x: Tensor) -> Tensor:
        if self.pipeline_ is None:
            raise RuntimeError(f"{type(self).__name__}: call fit() before score()")
        if x.shape[0] == 0:
            return torch.zeros(0, dtype=torch.float64, device=x.device)
        feats = _numpy(self.features(x))
        with _one_blas_thread():
            if self.classifier == "logistic":
                logodds = self.pipeline_.decision_function(feats)
            else:  # log-odds from the probabilities, clipped so that the scores stay finite
                p = np.clip(self.pipeline_.predict_proba(feats)[:, 1], 1e-12, 1 - 1e-12)
                logodds = np.log(p) - np.log1p(-p)
        return torch.as_tensor(np.asarray(logodds, dtype=np.float64), device=x.device)


class ActivationDetector(FeatureDetector):
    """Detector on the protected model's own view of the input.

    ``features="activations"`` (Metzen, Genewein, Fischer, Bischoff, "On Detecting Adversarial
    Perturbations", ICLR 2017; arXiv:1702.04267) reads a hidden layer through a forward hook:
    ``layer`` (a submodule or its name in ``model.named_modules()``), or by default the
    penultimate representation, i.e. the input of the last ``nn.Linear`` that runs in a forward
    pass (the classification head of the zoo's ``mlp`` and ``small_cnn``, and of most
    classifiers). ``features="logits"`` uses the logits and the log-probabilities (log-softmax:
    probabilities of confident predictions underflow), each sorted in decreasing order so that
    they do not depend on the predicted class, a learned version of the softmax-confidence
    baseline (Hendrycks and Gimpel, ICLR 2017; arXiv:1610.02136): inputs pushed just across a
    decision boundary have unusual confidence profiles.

    Features are extracted in batches under ``torch.no_grad`` with the model in eval mode, whose
    mode is then restored; the model is not copied, so a fine-tuned model is scored as it is
    now (refit after changing it).

    Args:
        model: a classifier returning logits ``(N, K)``. layer: see above (activations only).
        features: ``"activations"`` or ``"logits"``. batch_size: feature-extraction batch.
        classifier, C, hidden, random_state: see :class:`FeatureDetector`.
    """

    def __init__(self, model: nn.Module, layer: nn.Module | str | None = None, *,
                 features: Features = "activations", batch_size: int = 512,
                 classifier: Classifier = "logistic", C: float = 1.0,  # noqa: N803
                 hidden: int = 64, random_state: int = 0) -> None:
        super().__init__(classifier=classifier, C=C, hidden=hidden, random_state=random_state)
        if features not in ("activations", "logits"):
            raise ValueError(f"features must be 'activations' or 'logits', got {features!r}")
        if layer is not None and features == "logits":
            raise ValueError("layer= only applies to features='activations'")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.layer: nn.Module | None = None
        if isinstance(layer, str):
            modules = dict(model.named_modules())
            if layer not in modules:
                raise ValueError(f"no layer named {layer!r}; known: {sorted(modules)[:20]}")
            self.layer = modules[layer]
        else:
            self.layer = layer
        self.model, self.kind, self.batch_size = model, features, batch_size

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        out = []
        with eval_mode(self.model):
            for start in range(0, x.shape[0], self.batch_size):
                out.append(self.differentiable_features(x[start:start + self.batch_size].detach()))
        return torch.cat(out) if out else x.new_zeros((0, 0))

    def differentiable_features(self, x: Tensor) -> Tensor:
        """The detector's features of one batch, differentiable in ``x`` (no grad-mode or model
        mode of its own): what adaptive attacks differentiate through
        (:class:`advlab.attacks.adaptive.DetectorLogit`)."""
        if self.kind == "logits":
            logits = self.model(x)
            return torch.cat([logits.sort(1, descending=True).values,
                              logits.log_softmax(1).sort(1, descending=True).values], 1)
        return representation(self.model, x, self.layer)


def representation(model: nn.Module, x: Tensor, layer: nn.Module | None = None) -> Tensor:
    """``model``'s representation of ``x`` as ``(N, features)``: the output of ``layer``, or by
    default the input of the last ``nn.Linear`` that runs (the penultimate representation).
    One forward pass, read through hooks that are removed afterwards; the caller chooses the
    grad mode and the model mode."""
    captured: list[Tensor] = []
    if layer is not None:
        handles = [layer.register_forward_hook(lambda _m, _i, output: captured.append(output))]
    else:
        handles = [m.register_forward_pre_hook(lambda _m, inputs: captured.append(inputs[0]))
                   for m in model.modules() if isinstance(m, nn.Linear)]
        if not handles:
            raise ValueError("the model has no nn.Linear head; pass layer=")
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    if not captured:
        raise ValueError("the hooked layer did not run in the forward pass")
    return captured[-1].flatten(1).float()


def detection_metrics(detector: Detector, clean: Tensor, adversarial: Tensor) -> dict[str, float]:
    """ROC-AUC of the scores, and the detection rate (TPR) and false-positive rate at the
    detector's current ``threshold``, on held-out ``clean`` and ``adversarial`` inputs.

    Returns:
        ``{"roc_auc", "detection_rate", "false_positive_rate", "threshold", "target_fpr",
        "n_clean", "n_adversarial"}`` as plain floats (``target_fpr`` is NaN if the detector
        was not calibrated).
    """
    from sklearn.metrics import roc_auc_score

    if detector.threshold is None:
        raise RuntimeError("detection_metrics: the detector has no threshold; fit/calibrate it")
    s_clean = detector.score(clean).double().cpu()
    s_adv = detector.score(adversarial).double().cpu()
    if s_clean.numel() == 0 or s_adv.numel() == 0:
        raise ValueError("detection_metrics: need at least one clean and one adversarial input")
    scores = torch.cat([s_clean, s_adv]).numpy()
    labels = np.r_[np.zeros(s_clean.numel()), np.ones(s_adv.numel())]
    t = detector.threshold
    return {"roc_auc": float(roc_auc_score(labels, scores)),
            "detection_rate": float((s_adv > t).double().mean()),
            "false_positive_rate": float((s_clean > t).double().mean()),
            "threshold": float(t),
            "target_fpr": float("nan") if detector.target_fpr is None else detector.target_fpr,
            "n_clean": float(s_clean.numel()), "n_adversarial": float(s_adv.numel())}


def _one_blas_thread() -> Any:
    """Limit BLAS to one thread around scikit-learn calls. The problems are small (thousands of
    rows, at most a few hundred features), and on a busy machine OpenBLAS threads waiting for
    each other made a logistic-regression fit 30x slower (0.6 s instead of 0.02 s)."""
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    return threadpool_limits(limits=1, user_api="blas")


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()
