"""XAI-driven fine-tuning on SHAP features (Al-Essa, Andresini, Appice, Malerba, "An XAI-based
adversarial training approach for cyber-threat detection", IEEE DASC/PiCom/CBDCom/CyberSciTech
2022; the authors call the method XENIA and publish its code, github.com/malikalessa/XENIA).

1. A network is adversarially trained with FGSM (the caller's ``at_model``). In the paper this
   is *T+A*: FGSM versions ``A`` of the training rows ``T``, crafted once against a baseline,
   and a fresh network trained on ``T ∪ A`` (:mod:`advlab.explain.robust_features` builds it);
   :func:`advlab.defenses.adversarial_train` (``method="fgsm-at"``) is the on-line variant.
2. Per-sample SHAP values of that network on the training data form a new feature set: the
   effect of each original feature on the decision.
3. The adversarially trained network is fine-tuned on the SHAP features (transfer learning: the
   same architecture, initialised with its weights, cross-entropy on the true labels), and a
   test sample is classified through its SHAP representation, ``x -> SHAP(x) -> fine-tuned
   network`` (:func:`xai_fine_tune`, a :class:`ShapPipeline`).
4. The authors' code then fine-tunes that network once more on the raw ``T ∪ A`` rows (their
   "double fine-tuning", :func:`xenia_refine`): the final detector reads raw features again, so
   it needs no SHAP at test time and can be attacked end to end.

Choices, each an argument; the authors' code (main.py, Create_Shap_Local_Values.py,
fine_tuning.py, Hyperopt_Tunning.py) settles most of them:

* *SHAP estimator*: they run the SHAP library's KernelExplainer (1,000 samples, 100 stratified
  background rows of ``T ∪ A``). Here GradientSHAP (``shap="gradient"``, ``n_samples`` draws)
  or DeepLIFT-SHAP (``shap="deeplift"``, deterministic): approximations of the same values that
  scale to tens of thousands of rows.
* *Explained output*: at test time the class the network predicts (``target="predicted"``),
  since the label is unknown; an int fixes one class. Training rows are explained at their
  true label in the authors' code (``explain_train="label"``), or like test rows
  (``explain_train="target"``, this module's original choice).
* *Scale*: ``scale="minmax"`` (theirs: min-max statistics of the training SHAP values, not
  clipped), ``"standard"`` (per-feature mean and std) or ``"none"``; held inside the pipeline.
* *Fine-tuning*: all layers, Adam, cross-entropy; theirs holds out a stratified 20 % for early
  stopping (patience 10, at most 150 epochs, best weights restored: ``val_fraction=0.2,
  patience=10, epochs=150``) and picks lr in [1e-4, 1e-3] and the batch size by hyperopt.
  The loop is :func:`advlab.models.training.fit`, with the plain cross-entropy step.
* *Robustness*: the paper reports clean accuracy. The SHAP pipeline is not differentiable end
  to end through captum, so against it attacks are crafted on the network it starts from (a
  gray-box attacker); the refined network of step 4 is attacked white-box like any model.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import Tensor, nn

from advlab.explain.attributions import deeplift_shap, gradient_shap
from advlab.models.training import fit
from advlab.models.wrappers import Normalize, eval_mode

ShapName = Literal["gradient", "deeplift"]
ScaleName = Literal["standard", "minmax", "none"]


class ShapPipeline(nn.Module):
    """``x -> SHAP of at_model at x -> scaler -> head``: the classifier of step 3. Not
    differentiable in ``x`` (the SHAP stage is computed by captum and detached). Deterministic:
    GradientSHAP draws come from a generator re-seeded with ``seed`` at every call."""

    def __init__(self, at_model: nn.Module, head: nn.Module, background: Tensor, *,
                 shap: ShapName, n_samples: int, target: Literal["predicted"] | int,
                 seed: int, scaler: nn.Module | None = None) -> None:
        super().__init__()
        self.at_model, self.head = at_model, head
        self.scaler = scaler if scaler is not None else nn.Identity()
        self.register_buffer("background", background.detach().clone())
        self.shap, self.n_samples, self.target, self.seed = shap, n_samples, target, seed

    def representation(self, x: Tensor, target: Tensor | None = None) -> Tensor:
        """``(N, *D)`` SHAP values of ``at_model``: at ``target`` ``(N,)`` when given, else at
        its prediction or the pipeline's fixed class."""
        if target is None and self.target != "predicted":
            target = torch.full((x.shape[0],), int(self.target), dtype=torch.long,
                                device=x.device)
        with eval_mode(self.at_model):
            if self.shap == "deeplift":
                return deeplift_shap(self.at_model, x, target, background=self.background,
                                     batch_size=1024)
            return gradient_shap(self.at_model, x, target, background=self.background,
                                 n_samples=self.n_samples, batch_size=1024,
                                 generator=torch.Generator().manual_seed(self.seed))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.scaler(self.representation(x)))


def xai_fine_tune(at_model: nn.Module, x_train: Tensor, y_train: Tensor, *, background: Tensor,
                  shap: ShapName = "gradient", n_samples: int = 16,
                  target: Literal["predicted"] | int = "predicted",
                  explain_train: Literal["target", "label"] = "target",
                  scale: ScaleName = "standard", epochs: int = 5, lr: float = 3e-4,
                  batch_size: int = 256, val_fraction: float = 0.0, patience: int | None = None,
                  seed: int = 0, progress: bool = False) -> ShapPipeline:
    """Steps 2-3 of the module docstring: SHAP features of ``at_model`` on ``x_train``, then a
    copy of ``at_model`` fine-tuned on them (``at_model`` itself is not changed).

    Args:
        at_model: the FGSM adversarially trained classifier (logits ``(N, K)``).
        x_train, y_train: training inputs ``(N, *D)`` and int64 labels.
        background: ``(B, *D)`` reference rows for the SHAP expectation.
        shap, n_samples, target, explain_train, scale: see the module docstring.
        epochs, lr, batch_size: fine-tuning (Adam; :func:`advlab.models.training.fit`).
        val_fraction, patience: a seeded stratified share of the training rows held out to keep
            the best epoch, and early stopping (``patience`` needs ``val_fraction > 0``).
        seed: the split, the shuffling and the GradientSHAP draws.

    Returns:
        The :class:`ShapPipeline` ``x -> SHAP(x) -> fine-tuned head``, in eval mode.
    """
    name = "xai_fine_tune"
    if shap not in ("gradient", "deeplift"):
        raise ValueError(f"{name}: shap must be 'gradient' or 'deeplift', got {shap!r}")
    if target != "predicted" and (isinstance(target, bool) or not isinstance(target, int)):
        raise ValueError(f"{name}: target must be 'predicted' or a class index, got "
                         f"{target!r}")
    if explain_train not in ("target", "label") or scale not in ("standard", "minmax", "none"):
        raise ValueError(f"{name}: explain_train must be 'target' or 'label' and scale "
                         f"'standard', 'minmax' or 'none'; got {explain_train!r}, {scale!r}")
    probe = ShapPipeline(at_model, nn.Identity(), background, shap=shap, n_samples=n_samples,
                         target=target, seed=seed)
    labels = y_train if explain_train == "label" else None
    features = torch.cat([
        probe.representation(x_train[s:s + 4096], None if labels is None else
                             labels[s:s + 4096]) for s in range(0, x_train.shape[0], 4096)])
    scaler = make_scaler(features, scale)
    head: nn.Module = copy.deepcopy(at_model)
    with torch.no_grad():
        scaled = scaler(features)
    fine_tune(head, scaled, y_train, epochs=epochs, lr=lr, batch_size=batch_size,
              val_fraction=val_fraction, patience=patience, seed=seed, progress=progress)
    return ShapPipeline(at_model, head.eval(), background, shap=shap, n_samples=n_samples,
                        target=target, seed=seed, scaler=scaler).eval()


def xenia_refine(pipeline: ShapPipeline, x: Tensor, y: Tensor, *, epochs: int = 5,
                 lr: float = 3e-4, batch_size: int = 256, val_fraction: float = 0.0,
                 patience: int | None = None, seed: int = 0,
                 progress: bool = False) -> nn.Module:
    """Step 4 (the authors' "double fine-tuning"): a copy of the SHAP-fine-tuned network,
    without the SHAP stage and its scaler, fine-tuned on the raw rows ``(x, y)`` (in the paper
    ``T ∪ A``). Arguments as in :func:`xai_fine_tune`.

    Returns:
        A raw-input classifier (logits ``(N, K)``) in eval mode; ``pipeline`` is not changed.
    """
    net = copy.deepcopy(pipeline.head)
    fine_tune(net, x, y, epochs=epochs, lr=lr, batch_size=batch_size, val_fraction=val_fraction,
              patience=patience, seed=seed, progress=progress)
    return net.eval()


def make_scaler(features: Tensor, scale: ScaleName) -> nn.Module:
    """The per-feature scaler of ``features`` ``(N, *D)``: a :class:`Normalize` with the mean
    and std (``"standard"``) or the minimum and range (``"minmax"``), or the identity."""
    if scale == "none":
        return nn.Identity()
    flat = features.flatten(1)
    if scale == "standard":
        shift, spread = flat.mean(0), flat.std(0)
    else:
        shift, spread = flat.min(0).values, flat.max(0).values - flat.min(0).values
    shape = features.shape[1:]
    return Normalize(shift.reshape(shape), spread.clamp_min(1e-8).reshape(shape))


def fine_tune(net: nn.Module, x: Tensor, y: Tensor, *, epochs: int, lr: float, batch_size: int,
              val_fraction: float, patience: int | None, seed: int, progress: bool) -> None:
    """:func:`advlab.models.training.fit` on ``(x, y)``, with a seeded stratified validation
    share when ``val_fraction > 0`` (its best epoch is kept)."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"fine_tune: val_fraction must be in [0, 1), got {val_fraction!r}")
    if patience is not None and val_fraction == 0:
        raise ValueError("fine_tune: early stopping (patience) needs val_fraction > 0")
    val = None
    if val_fraction > 0:
        from sklearn.model_selection import train_test_split

        tr, va = train_test_split(torch.arange(len(y)).numpy(), test_size=val_fraction,
                                  random_state=seed, stratify=y.cpu().numpy())
        (x, y), val = (x[tr], y[tr]), (x[va], y[va])
    fit(net, (x, y), val, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
        patience=patience, progress=progress)
