"""Local attributions backed by captum: saliency, integrated gradients, Grad-CAM and SHAP values.

Every function has the same head, ``fn(model, x, target=None, *, knobs...) -> Tensor``:

* ``model`` is any callable returning logits ``(N, K)`` (Grad-CAM and DeepLIFT-SHAP need an
  ``nn.Module``). It runs in eval mode, its mode is restored, and parameters' ``.grad`` is never
  written (captum differentiates with ``torch.autograd.grad``).
* ``x`` is a float batch ``(N, *D)``; it is never mutated.
* ``target`` is the class whose logit is explained: ``None`` (the model's prediction), an int
  (one class for every sample) or an int64 tensor ``(N,)``.
* The result is detached, on ``x``'s device and dtype, of shape ``(N, *D)`` (Grad-CAM:
  ``(N, H, W)``), and "explains the logit ``f_t(x)``"; for the reference-based methods
  (integrated gradients, SHAP) the attributions sum to ``f_t(x) - f_t(reference)``.
* Random methods take ``generator`` (see :func:`private_rng`).

captum (Kokhlikyan et al., 2020; arXiv:2009.07896) does the work; its classes never appear in
these signatures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from advlab.models.wrappers import eval_mode

Model = Callable[[Tensor], Tensor]
Target = int | Tensor | None
SaliencyMode = Literal["gradient", "abs", "input_x_gradient"]


# ------------------------------------------------------------------------------ shared checks
def check_batch(name: str, x: object) -> Tensor:
    """``x`` as a detached floating ``(N, *D)`` batch; ``ValueError`` naming ``name`` else."""
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{name}: x must be a non-empty floating tensor (N, *D), got "
                         f"{getattr(x, 'dtype', type(x).__name__)} of shape "
                         f"{tuple(getattr(x, 'shape', ()))}")
    return x.detach()


def resolve_target(name: str, model: Model, x: Tensor, target: Target) -> Tensor:
    """``target`` as int64 ``(N,)`` on ``x.device``; ``None`` becomes the predicted class."""
    with torch.no_grad(), eval_mode(model):
        logits = model(x)
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: the model must return logits (N, K), got "
                         f"{tuple(getattr(logits, 'shape', ()))} for {x.shape[0]} inputs")
    k = logits.shape[1]
    if target is None:
        return logits.argmax(1)
    if isinstance(target, bool) or not isinstance(target, (int, Tensor)):
        raise ValueError(f"{name}: target must be None, an int or an int64 tensor, got "
                         f"{type(target).__name__}")
    t = torch.full((x.shape[0],), target, dtype=torch.long, device=x.device) \
        if isinstance(target, int) else target
    if t.dtype != torch.long or t.shape != (x.shape[0],):
        raise ValueError(f"{name}: target must be int64 of shape ({x.shape[0]},), got {t.dtype} "
                         f"{tuple(t.shape)}")
    if bool(((t < 0) | (t >= k)).any()):
        raise ValueError(f"{name}: target classes must lie in [0, {k}), got "
                         f"{int(t.min())}..{int(t.max())}")
    return t.to(x.device)


def _check_positive(name: str, **values: int) -> None:
    for key, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: {key} must be an int >= 1, got {v!r}")


def _background(name: str, background: Tensor, x: Tensor) -> Tensor:
    if not isinstance(background, Tensor) or background.shape[1:] != x.shape[1:] or \
            background.shape[0] == 0:
        raise ValueError(f"{name}: background must be a non-empty tensor (B, *D) with "
                         f"D = {tuple(x.shape[1:])}, got {tuple(getattr(background, 'shape', ()))}")
    return background.detach().to(device=x.device, dtype=x.dtype)


@contextlib.contextmanager
def private_rng(generator: torch.Generator | None) -> Iterator[None]:
    """Run a block that draws from torch's and numpy's *global* RNGs (as captum does) in a
    private fork of both, seeded from ``generator`` (from torch's global RNG when ``None``, like
    any torch sampler). The caller's RNG states are restored on exit."""
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2 ** 32)
        try:
            yield
        finally:
            np.random.set_state(state)


def _chunks(x: Tensor, t: Tensor | None,
            batch_size: int | None) -> Iterator[tuple[Tensor, Tensor | None]]:
    step = x.shape[0] if batch_size is None else batch_size
    for start in range(0, x.shape[0], step):
        yield x[start:start + step], None if t is None else t[start:start + step]


# ------------------------------------------------------------------------------ gradients
def saliency(model: Model, x: Tensor, target: Target = None, *, mode: SaliencyMode = "gradient",
             batch_size: int | None = None) -> Tensor:
    """Gradient saliency map ``∂f_t/∂x`` (Simonyan, Vedaldi, Zisserman, "Deep Inside
    Convolutional Networks", ICLR-W 2014, eq. 2; arXiv:1312.6034).

    ``mode="abs"`` returns ``|∂f_t/∂x|`` (the paper's map), ``"input_x_gradient"`` returns
    ``x ⊙ ∂f_t/∂x`` (Shrikumar et al. 2016, arXiv:1605.01713). One forward+backward per chunk of
    ``batch_size`` samples (default: the whole batch). Conventions: module docstring.

    Returns:
        ``(N, *D)``, detached, ``x``'s dtype and device.
    """
    from captum.attr import InputXGradient, Saliency

    x = check_batch("saliency", x)
    if mode not in ("gradient", "abs", "input_x_gradient"):
        raise ValueError(f"saliency: mode must be 'gradient', 'abs' or 'input_x_gradient', "
                         f"got {mode!r}")
    # target None: the argmax is taken inside the one forward pass (the gradient is at x itself)
    t = None if target is None else resolve_target("saliency", model, x, target)
    summed = _TargetSum(model)
    with eval_mode(model), warnings_off():
        if mode == "input_x_gradient":
            method = InputXGradient(summed)
            out = [method.attribute(xb, additional_forward_args=(tb,))
                   for xb, tb in _chunks(x, t, batch_size)]
        else:
            method = Saliency(summed)
            out = [method.attribute(xb, abs=mode == "abs", additional_forward_args=(tb,))
                   for xb, tb in _chunks(x, t, batch_size)]
    return torch.cat(out).detach()


class _TargetSum:
    """``z, t -> Σ_i f(z)_{i, t_i}`` as a one-element tensor (``t = None``: each row's argmax).

    Gradient methods hand captum this instead of the model, the targets passed (and expanded
    and chunked alongside the inputs) as an additional forward argument. The gradient of the
    sum is each sample's own gradient, as samples do not interact in eval mode; and captum's
    ``autograd.grad`` differentiates one output instead of unbinding one per row, which cost as
    much as the backward pass itself on 1,000 tabular rows."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def __call__(self, z: Tensor, t: Tensor | None) -> Tensor:
        logits = self.model(z)
        if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != z.shape[0]:
            raise ValueError(f"the model must return logits (N, K), got "
                             f"{tuple(getattr(logits, 'shape', ()))} for {z.shape[0]} inputs")
        index = logits.detach().argmax(1, keepdim=True) if t is None else t[:, None]
        return logits.gather(1, index).sum().reshape(1)


def integrated_gradients(model: Model, x: Tensor, target: Target = None, *,
                         baseline: Tensor | float | None = None, steps: int = 32,
                         batch_size: int | None = None) -> Tensor:
    """Integrated gradients (Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks",
    ICML 2017, eq. 1; arXiv:1703.01365): ``(x - x') ⊙ ∫₀¹ ∂f_t(x' + α(x - x'))/∂x dα``.

    The integral is a ``steps``-point Gauss-Legendre rule (captum's default), which is exact for
    a linear model whatever ``steps``. Completeness: the attributions of a sample sum to
    ``f_t(x) - f_t(x')`` up to the quadrature error.

    Args:
        baseline: ``x'``: ``None`` (zeros), a float, or a tensor ``(*D)`` or ``(N, *D)``.
        steps: quadrature points; the cost is ``steps`` forward+backward passes.
        batch_size: samples per chunk (each chunk runs ``steps × batch_size`` rows at once).

    Returns:
        ``(N, *D)``, detached, ``x``'s dtype and device.
    """
    from captum.attr import IntegratedGradients

    x = check_batch("integrated_gradients", x)
    _check_positive("integrated_gradients", steps=steps)
    t = resolve_target("integrated_gradients", model, x, target)
    if baseline is None or isinstance(baseline, (int, float)):
        base = torch.full_like(x, float(baseline or 0.0))
    elif isinstance(baseline, Tensor) and baseline.shape in (x.shape, x.shape[1:]):
        base = baseline.detach().to(x).expand_as(x)
    else:
        raise ValueError(f"integrated_gradients: baseline must be None, a float or a tensor of "
                         f"shape {tuple(x.shape[1:])} or {tuple(x.shape)}, got "
                         f"{tuple(getattr(baseline, 'shape', ()))}")
    step = x.shape[0] if batch_size is None else batch_size
    method = IntegratedGradients(_TargetSum(model))
    # rows per forward+backward: about 2^19 input elements (about 4,000 NSL-KDD rows) and at
    # least one chunk of samples; one giant batch of steps x N rows ran 1.35x slower (cache)
    rows = max(min(step, x.shape[0]), (1 << 19) // max(1, x[0].numel()))
    out = []
    with eval_mode(model), warnings_off():
        for start in range(0, x.shape[0], step):
            sl = slice(start, start + step)
            out.append(method.attribute(x[sl], baselines=base[sl], n_steps=steps,
                                        additional_forward_args=(t[sl],),
                                        internal_batch_size=rows))
    return torch.cat(out).detach()


def grad_cam(model: nn.Module, x: Tensor, target: Target = None, *,
             layer: nn.Module | str | None = None, upsample: bool = True,
             batch_size: int | None = None) -> Tensor:
    """Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization", ICCV 2017, eqs. 1-2; arXiv:1610.02391).

    ``ReLU(Σ_k α_k A^k)`` with ``α_k`` the spatial mean of ``∂f_t/∂A^k`` over the feature maps
    ``A`` of a convolutional ``layer`` (a module or its name; default the last ``nn.Conv2d``),
    bilinearly upsampled to the input's height and width when ``upsample``.

    Returns:
        ``(N, H, W)`` non-negative maps (the layer's resolution without ``upsample``).
    """
    from captum.attr import LayerAttribution, LayerGradCam

    x = check_batch("grad_cam", x)
    if not isinstance(model, nn.Module):
        raise ValueError(f"grad_cam: model must be an nn.Module, got {type(model).__name__}")
    if x.dim() != 4:
        raise ValueError(f"grad_cam: x must be images (N, C, H, W), got {tuple(x.shape)}")
    conv = _find_layer("grad_cam", model, layer, nn.Conv2d)
    t = resolve_target("grad_cam", model, x, target)
    method = LayerGradCam(model, conv)
    out = []
    with eval_mode(model), warnings_off():
        for xb, tb in _chunks(x, t, batch_size):
            cam = method.attribute(xb, target=tb, relu_attributions=True)
            if upsample:
                cam = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), "bilinear")
            out.append(cam[:, 0])
    return torch.cat(out).detach()


def _find_layer(name: str, model: nn.Module, layer: nn.Module | str | None,
                kind: type[nn.Module]) -> nn.Module:
    if isinstance(layer, nn.Module):
        return layer
    modules = dict(model.named_modules())
    if isinstance(layer, str):
        if layer not in modules:
            raise ValueError(f"{name}: no layer named {layer!r}; known: {sorted(modules)[:20]}")
        return modules[layer]
    found = [m for m in modules.values() if isinstance(m, kind)]
    if not found:
        raise ValueError(f"{name}: the model has no {kind.__name__} layer; pass layer=")
    return found[-1]


# ------------------------------------------------------------------------------ SHAP
def shapley_sampling(model: Model, x: Tensor, target: Target = None, *, background: Tensor,
                     n_samples: int = 25, groups: Sequence[Sequence[int]] | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """SHAP values of any model by permutation sampling (Lundberg and Lee, "A Unified Approach to
    Interpreting Model Predictions", NeurIPS 2017, eq. 8 with the interventional value function
    ``v(S) = E_b[f_t(x_S, b_S̄)]``; estimator of Štrumbelj and Kononenko, KAIS 2014: the
    permutation-sampling estimator).

    Each of ``n_samples`` rounds draws one feature permutation (shared by the batch) and, for
    every sample, one reference row of ``background``, and adds the features one by one (captum's
    ``ShapleyValueSampling``): the average is an unbiased estimate of the SHAP values, which sum
    to ``f_t(x) - mean_b f_t(b)`` in expectation. Cost: ``n_samples × (G + 1)`` forward passes
    of the batch, ``G`` the number of features or ``groups``.

    Args:
        background: ``(B, *D)`` reference rows (a sample of the training data).
        groups: column groups (of the flattened input) attributed as one player, e.g. one-hot
            groups; every column of a group carries the group's value. Columns in no group are
            players of their own.

    Returns:
        ``(N, *D)``, detached, ``x``'s dtype and device.
    """
    from captum.attr import ShapleyValueSampling

    x = check_batch("shapley_sampling", x)
    _check_positive("shapley_sampling", n_samples=n_samples)
    bg = _background("shapley_sampling", background, x)
    t = resolve_target("shapley_sampling", model, x, target)
    mask = feature_mask(x.shape[1:], groups, "shapley_sampling").to(x.device)
    players = int(mask.max()) + 1
    per_eval = max(1, min(players, 8192 // x.shape[0]))
    method = ShapleyValueSampling(model)
    total = torch.zeros_like(x)
    with eval_mode(model), private_rng(generator), warnings_off():
        for _ in range(n_samples):
            refs = bg[torch.randint(0, bg.shape[0], (x.shape[0],)).to(x.device)]
            total += method.attribute(x, baselines=refs, target=t, feature_mask=mask,
                                      n_samples=1, perturbations_per_eval=per_eval)
    return (total / n_samples).detach()


def feature_mask(shape: torch.Size | tuple[int, ...], groups: Sequence[Sequence[int]] | None,
                 name: str = "feature_mask") -> Tensor:
    """A ``(1, *D)`` int64 mask numbering the players: each group one id, other columns their own.
    ``ValueError`` when a group is empty, out of range, or overlaps another."""
    d = int(np.prod(shape))
    ids = torch.full((d,), -1, dtype=torch.long)
    for gi, g in enumerate(groups or ()):
        cols = torch.as_tensor(list(g), dtype=torch.long)
        if cols.numel() == 0 or bool(((cols < 0) | (cols >= d)).any()):
            raise ValueError(f"{name}: group {gi} must hold column indices in [0, {d}), got "
                             f"{list(g)}")
        if bool((ids[cols] != -1).any()):
            raise ValueError(f"{name}: group {gi} overlaps an earlier group")
        ids[cols] = -2 - gi  # provisional, renumbered below
    free = ids == -1
    ids[free] = torch.arange(int(free.sum()))
    _, ids = torch.unique(ids, return_inverse=True)  # dense 0..G-1, order preserved
    return ids.reshape(1, *shape)


def gradient_shap(model: Model, x: Tensor, target: Target = None, *, background: Tensor,
                  n_samples: int = 32, noise: float = 0.0, layer: nn.Module | str | None = None,
                  batch_size: int | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
    """GradientSHAP, expected gradients (Lundberg and Lee, NeurIPS 2017, §4 and the SHAP
    library's GradientExplainer; Erion et al. 2019, arXiv:1906.10670).

    ``E_{b, α}[(x - b) ⊙ ∂f_t(b + α(x - b))/∂x]`` over reference rows ``b`` of ``background`` and
    ``α ~ U(0, 1)``, estimated from ``n_samples`` draws per sample (captum's ``GradientShap``;
    ``noise`` adds Gaussian noise of that std to ``x`` first, SmoothGrad-style). For a linear
    model it is ``w ⊙ (x - E[b])`` up to the sampling error of the references. With ``layer``
    (an ``nn.Module`` of ``model`` or its name), the attributions go to that layer's *input*
    instead (captum's ``LayerGradientShap``), shape ``(N, *H)``.

    Returns:
        ``(N, *D)`` (or the layer input's shape), detached, ``x``'s dtype and device.
    """
    from captum.attr import GradientShap, LayerGradientShap

    x = check_batch("gradient_shap", x)
    _check_positive("gradient_shap", n_samples=n_samples)
    if not noise >= 0:
        raise ValueError(f"gradient_shap: noise must be >= 0, got {noise!r}")
    bg = _background("gradient_shap", background, x)
    t = resolve_target("gradient_shap", model, x, target)
    if layer is not None and not isinstance(model, nn.Module):
        raise ValueError("gradient_shap: layer= needs an nn.Module model")
    method: object = GradientShap(model) if layer is None else \
        LayerGradientShap(model, _find_layer("gradient_shap", model, layer, nn.Module))
    extra = {} if layer is None else {"attribute_to_layer_input": True}
    with eval_mode(model), private_rng(generator), warnings_off():
        out = [method.attribute(xb, baselines=bg, target=tb, n_samples=n_samples,  # type: ignore[attr-defined]
                                stdevs=noise, **extra)
               for xb, tb in _chunks(x, t, batch_size)]
    return torch.cat(out).detach()


def deeplift_shap(model: nn.Module, x: Tensor, target: Target = None, *, background: Tensor,
                  layer: nn.Module | str | None = None,
                  batch_size: int | None = None) -> Tensor:
    """DeepLIFT-SHAP (Lundberg and Lee, NeurIPS 2017, §4.2 "Deep SHAP"; DeepLIFT rescale rule of
    Shrikumar, Greenside, Kundaje, ICML 2017, arXiv:1704.02685): DeepLIFT attributions against
    every reference row of ``background``, averaged (captum's ``DeepLiftShap``).

    Deterministic. Each sample's attributions sum to ``f_t(x) - mean_b f_t(b)`` exactly
    (DeepLIFT's summation-to-delta). Cost: ``B`` forward+backward rows per sample. ``model`` must
    be an ``nn.Module`` whose nonlinearities are modules (``nn.ReLU``), each used once. With
    ``layer`` (a module or its name) the attributions go to that layer's *input* (captum's
    ``LayerDeepLiftShap``; Fidel et al. 2019 explain the last hidden layer this way).

    Returns:
        ``(N, *D)`` (or the layer input's shape), detached, ``x``'s dtype and device.
    """
    from captum.attr import DeepLiftShap, LayerDeepLiftShap

    x = check_batch("deeplift_shap", x)
    if not isinstance(model, nn.Module):
        raise ValueError(f"deeplift_shap: model must be an nn.Module, got {type(model).__name__}")
    bg = _background("deeplift_shap", background, x)
    if bg.shape[0] < 2:
        raise ValueError("deeplift_shap: background needs at least 2 rows")
    t = resolve_target("deeplift_shap", model, x, target)
    method: object = DeepLiftShap(model) if layer is None else \
        LayerDeepLiftShap(model, _find_layer("deeplift_shap", model, layer, nn.Module))
    extra = {} if layer is None else {"attribute_to_layer_input": True}
    with eval_mode(model), warnings_off():
        out = [method.attribute(xb, baselines=bg, target=tb, **extra)  # type: ignore[attr-defined]
               for xb, tb in _chunks(x, t, batch_size)]
    return torch.cat(out).detach()


@contextlib.contextmanager
def warnings_off() -> Iterator[None]:
    """Silence captum's advisory warnings (e.g. "Setting forward, backward hooks ...")."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield
