"""What every attack shares: input checks, step masking for the domain, success after repair.

Attack conventions, documented once here and linked from each attack:

* Signature ``attack(model, x, y, threat, *, target=None, ...knobs, generator=None) -> x_adv``.
  ``x`` is ``(N, *D)`` inside ``threat.domain``; ``y`` holds int64 true labels ``(N,)``;
  ``target`` (optional) holds int64 target classes, which makes the attack targeted.
* The output has ``x``'s shape, dtype and device, is detached, lies in ``threat.domain`` and, for
  fixed-``eps`` attacks, in the ball. Minimal-norm attacks (``eps = inf`` allowed) return the
  smallest successful perturbation they found, or ``x`` itself where they found none.
* Attacks run the model in eval mode and restore its mode, never touch parameters' ``.grad``,
  never mutate ``x``, never print and never seed globally: randomness comes from ``generator``.
* Integer, binary and one-hot features are relaxed while optimising and repaired at the end;
  success is then checked again on the repaired point.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor

from advlab.losses import is_success
from advlab.threat import ThreatModel

Model = Callable[[Tensor], Tensor]
F = TypeVar("F", bound=Callable[..., Any])


def step_size_rule(rule: Callable[..., float]) -> Callable[[F], F]:
    """Declare the rule an attack applies when ``step_size=None``: ``rule(eps, **knobs)``.

    The attack calls the rule itself, and :func:`resolved_knobs` reads it from the attack, so a
    default step size is written once, beside the algorithm that owns it.
    """
    def mark(fn: F) -> F:
        fn.step_size_rule = rule  # type: ignore[attr-defined]
        return fn
    return mark


def resolved_knobs(attack: Callable[..., Tensor], eps: float) -> dict[str, Any]:
    """The knobs a configured attack runs with at ``eps``: its name, its signature's keyword
    defaults, the keywords a ``functools.partial`` binds, and ``step_size`` resolved by the
    attack's own :func:`step_size_rule` when it is left at ``None`` (``generator`` and
    ``target`` are per-call and left out)."""
    fn = attack.func if isinstance(attack, functools.partial) else attack
    bound = dict(attack.keywords) if isinstance(attack, functools.partial) else {}
    try:
        defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items()
                    if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
    except (TypeError, ValueError):
        defaults = {}
    knobs = {k: v for k, v in {**defaults, **bound}.items() if k not in ("generator", "target")}
    rule = getattr(fn, "step_size_rule", None)
    if "step_size" in knobs and knobs["step_size"] is None and rule is not None:
        knobs["step_size"] = rule(eps, **knobs)
    return {"name": getattr(fn, "__name__", type(fn).__name__), **knobs}


def check_inputs(name: str, model: Model, x: Tensor, y: Tensor, threat: ThreatModel,
                 target: Tensor | None, *, needs_finite_eps: bool = False) -> None:
    """Validate an attack's inputs; raise ``ValueError`` naming the attack and the problem."""
    if not isinstance(threat, ThreatModel):
        raise ValueError(f"{name}: threat must be a ThreatModel, got {type(threat).__name__}")
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2:
        shape = tuple(getattr(x, "shape", ()))
        raise ValueError(f"{name}: x must be a floating tensor (N, *D), got "
                         f"{getattr(x, 'dtype', type(x))} of shape {shape}")
    for label, t in (("y", y), ("target", target)):
        if t is None:
            continue
        if not isinstance(t, Tensor) or t.dtype != torch.long or t.shape != (x.shape[0],):
            raise ValueError(f"{name}: {label} must be int64 of shape ({x.shape[0]},), got "
                             f"{getattr(t, 'dtype', type(t))} {tuple(getattr(t, 'shape', ()))}")
        if t.device != x.device:
            raise ValueError(f"{name}: {label} is on {t.device}, x on {x.device}")
    if target is not None and bool((target == y).any()):
        i = int((target == y).nonzero()[0, 0])
        raise ValueError(f"{name}: target equals the true label for sample {i} "
                         f"(class {int(y[i])}); targets must differ from the labels")
    if needs_finite_eps and not threat.bounded:
        raise ValueError(f"{name} is a fixed-budget attack: it needs a finite threat.eps")
    threat.domain.validate(x, name=f"{name}: x")


def movable(grad: Tensor, delta: Tensor, lo: Tensor, hi: Tensor, atol: float = 1e-12) -> Tensor:
    """Zero the gradient where the box of allowed perturbations blocks its direction.

    A coordinate at its lower bound cannot decrease, at its upper bound cannot increase;
    immutable features (``lo = hi = 0``) cannot move at all, and monotone features cannot leave
    their allowed side. Without this, sparse (L1) and normalised (L2) steps waste their budget on
    coordinates that the projection then throws away.
    """
    blocked = ((delta <= lo + atol) & (grad < 0)) | ((delta >= hi - atol) & (grad > 0))
    return grad.masked_fill(blocked, 0.0)


def index_or_none(t: Tensor | None, idx: Tensor) -> Tensor | None:
    return None if t is None else t[idx]


def repaired_success(model: Model, x_adv: Tensor, x: Tensor, y: Tensor, threat: ThreatModel,
                     target: Tensor | None) -> tuple[Tensor, Tensor]:
    """Repair relaxed points to valid ones (discrete domains) and check success on them.

    Returns ``(x_valid, success)``; for continuous domains the repair is the identity.
    """
    valid = threat.repair(x_adv, x) if threat.domain.is_discrete else x_adv
    with torch.no_grad():
        success = is_success(model(valid), y, target)
    return valid, success


def expand_as_batch(mask: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-sample ``(N,)`` tensor to broadcast against ``x`` of shape ``(N, *D)``."""
    return mask.view(-1, *([1] * (x.dim() - 1)))
