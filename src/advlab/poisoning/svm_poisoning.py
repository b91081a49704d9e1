"""Gradient-based data injection against support vector machines.

Biggio, Nelson and Laskov, "Poisoning Attacks against Support Vector Machines", ICML 2012
(arXiv:1206.6389). The attacker adds a point ``(x_c, y_c)`` to the training set and moves
``x_c`` by gradient ascent on the SVM's hinge loss over a validation set,

    L(x_c) = sum_k max(0, 1 - y_k f_{x_c}(x_k))                                  (eq. 1)

where ``f_{x_c}`` is the SVM retrained with the attack point. The gradient goes through the
SVM's optimality (KKT) conditions, kept satisfied while ``x_c`` moves (eqs. 7-10): with ``S``
the margin support vectors and ``beta = y_S * dalpha_S / du``,

    [K_SS 1; 1^T 0] [beta; db/du] = -[y_c alpha_c dK(x_S, u)/du; 0]
    df(x_k)/du = K_kS beta + db/du + y_c alpha_c dK(x_k, u)/du
    dL/du = -sum_{k: y_k f(x_k) < 1} y_k df(x_k)/du

The learner is scikit-learn's ``SVC`` (linear or RBF kernel), retrained at every step as in the
paper. Points are injected one after another, each against the SVM poisoned by the previous
ones, and every step is projected back onto the feature bounds. Two step schedules:
``"fixed"`` is Algorithm 1 as the authors' code runs it (their ``attack_rbf_SVM.m``): a fixed
step along the unit gradient, taken whatever the loss does, until the validation error has not
risen for ``patience`` steps; ``"backtracking"`` (the default) undoes a step that lowers the
loss and halves the step size.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits
from torch import Tensor
from tqdm.auto import tqdm

from advlab.attacks.common import movable
from advlab.domain import Domain
from advlab.poisoning.base import Poisoned, check_training_set

Kernel = Literal["linear", "rbf"]
Schedule = Literal["backtracking", "fixed"]


def svm_injection(x: Tensor, y: Tensor, *, x_val: Tensor, y_val: Tensor, n_points: int = 1,
                  kernel: Kernel = "linear", C: float = 1.0,  # noqa: N803
                  gamma: float | None = None, attack_class: int | None = None,
                  domain: Domain | None = None, step_size: float | None = None,
                  max_steps: int = 100,
                  tol: float = 1e-5, start_candidates: int = 5,
                  schedule: Schedule = "backtracking", patience: int = 50,
                  start_from: Literal["train", "validation"] = "train",
                  generator: torch.Generator | None = None,
                  progress: bool = False) -> Poisoned:
    """Inject ``n_points`` poisoning points into a two-class training set (Biggio et al. 2012).

    Each point starts as a copy of a point of the class opposite to ``attack_class`` (from the
    training set, or the validation set as in the authors' code), labelled ``attack_class``
    (the paper's initialisation; the best of ``start_candidates`` random copies that the
    current SVM puts beyond the margin, see :func:`_start`), then climbs the validation hinge
    loss by steps of ``step_size`` along the normalised gradient, each projected onto
    ``domain``'s bounds. ``schedule="backtracking"``: a step that lowers the loss is undone and
    the step size halved (it doubles again after a successful step, up to ``step_size``); the
    search stops after ``max_steps`` steps, or when the step size falls below ``tol``.
    ``schedule="fixed"``: every step is taken; the search stops after ``max_steps`` steps, or
    when the validation error is no higher than ``patience`` steps before. Either way the best
    point found is kept, and the next point is crafted against the SVM trained with it.

    Args:
        x, y: the training set, ``(N, *D)`` and int64 ``(N,)`` with exactly two classes.
        x_val, y_val: the attacker's validation set (same two classes).
        n_points: how many points to inject, one after another.
        kernel, C, gamma: the SVM (``gamma`` defaults to scikit-learn's ``"scale"`` value
            ``1 / (D * var(x))``, fixed once from the clean training set).
        attack_class: the label of the injected points (default: the larger class label).
        domain: the feature space; default ``Domain(0, 1)``. Only its bounds are used: the
            injected point must be a continuous box point.
        step_size: the L2 length of a step; default 7% of the diagonal of the feature box (2.0
            for 784 pixels in [0, 1]).
        max_steps, tol, schedule, patience: the gradient ascent (see above).
        start_candidates: starting copies tried per point (1 = the paper's single clone).
        start_from: ``"train"`` or ``"validation"``: where the starting copies come from.
        generator: picks the starting points. progress: a tqdm bar over the points.

    Returns:
        :class:`Poisoned` with the injected rows appended; ``indices = N .. N + n_points - 1``;
        ``info["validation_hinge"]`` holds each point's final mean validation hinge loss,
        ``info["start_hinge"]`` the loss at its starting point and ``info["steps"]`` its
        number of steps.
    """
    name = "svm_injection"
    check_training_set(name, x, y)
    check_training_set(name + " (validation)", x_val, y_val)
    classes = torch.unique(y)
    if classes.numel() != 2:
        raise ValueError(f"{name}: needs exactly two classes in y, got {classes.tolist()}")
    if not bool(torch.isin(y_val, classes).all()):
        raise ValueError(f"{name}: y_val has classes outside {classes.tolist()}")
    if kernel not in ("linear", "rbf"):
        raise ValueError(f"{name}: kernel must be 'linear' or 'rbf', got {kernel!r}")
    if start_candidates < 1 or patience < 1:
        raise ValueError(f"{name}: start_candidates and patience must be >= 1, got "
                         f"{start_candidates}, {patience}")
    if schedule not in ("backtracking", "fixed") or start_from not in ("train", "validation"):
        raise ValueError(f"{name}: schedule must be 'backtracking' or 'fixed' and start_from "
                         f"'train' or 'validation', got {schedule!r}, {start_from!r}")
    if n_points < 0 or max_steps < 1 or (step_size is not None and step_size <= 0) or C <= 0:
        raise ValueError(f"{name}: need n_points >= 0, max_steps >= 1, step_size > 0 and C > 0; "
                         f"got {n_points}, {max_steps}, {step_size}, {C}")
    y_c = int(classes[1]) if attack_class is None else attack_class
    if y_c not in classes.tolist():
        raise ValueError(f"{name}: attack_class must be one of {classes.tolist()}, got {y_c!r}")
    domain = domain if domain is not None else Domain(0.0, 1.0)
    if domain.is_discrete:
        raise ValueError(f"{name}: the injected point is optimised continuously; pass a box "
                         "Domain (discrete features are not supported)")
    domain.validate(x, name=f"{name}: x")
    xs = x.detach().flatten(1).cpu().double().numpy()
    lo, hi = (b.expand(xs.shape[1]).cpu().double().numpy()
              for b in domain.bounds(x.flatten(1)[:1]))
    g = float(gamma) if gamma is not None else 1.0 / (xs.shape[1] * xs.var())
    if not np.isfinite(hi - lo).all():
        raise ValueError(f"{name}: the domain must bound every feature (finite lower and upper)")
    step = step_size if step_size is not None else 0.07 * float(np.linalg.norm(hi - lo))
    svm = _Svm(kernel, C, g)
    sign = lambda labels: np.where(labels == int(classes[1]), 1.0, -1.0)  # noqa: E731
    ys, yv = sign(y.cpu().numpy()), sign(y_val.cpu().numpy())
    xv = x_val.detach().flatten(1).cpu().double().numpy()
    yc = float(sign(np.array([y_c]))[0])
    source = xs if start_from == "train" else xv
    pool = np.flatnonzero((ys if start_from == "train" else yv) != yc)  # the other class
    ascend = _ascend if schedule == "backtracking" else _ascend_fixed
    points, starts_loss, losses, steps, starts = [], [], [], [], []
    # one BLAS thread: the fits and kernels are small, and with more threads on a busy machine
    # each ascent step cost 6x the CPU time (0.22 s instead of 0.04 s on MNIST 7 vs 1)
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in tqdm(range(n_points), desc=name, unit="point", disable=not progress,
                      leave=False):
            i = _start(svm, xs, ys, xv, yv, source, pool, yc, start_candidates, generator)
            starts.append(i)
            u, (first, loss), n = ascend(svm, xs, ys, xv, yv, source[i].copy(), yc, lo, hi,
                                         step, max_steps,
                                         tol if schedule == "backtracking" else patience)
            points.append(u)
            starts_loss.append(first)
            losses.append(loss)
            steps.append(n)
            xs, ys = np.vstack([xs, u]), np.append(ys, yc)
    n = x.shape[0]
    injected = torch.from_numpy(np.array(points).reshape(n_points, *x.shape[1:])).to(x)
    x_new = torch.cat([x, injected])
    y_new = torch.cat([y, torch.full((n_points,), y_c, dtype=y.dtype, device=y.device)])
    return Poisoned(x_new, y_new, torch.arange(n, n + n_points, device=y.device), "injection",
                    {"attack": name, "kernel": kernel, "C": C, "gamma": g, "attack_class": y_c,
                     "step_size": step, "max_steps": max_steps, "schedule": schedule,
                     "start_from": start_from,
                     "start_rows": starts, "start_hinge": starts_loss,
                     "validation_hinge": losses, "steps": steps})


class _Svm:
    """SVC fits and the kernel derivatives that the gradient needs (numpy, float64)."""

    def __init__(self, kernel: Kernel, C: float, gamma: float,  # noqa: N803
                 tol: float = 1e-4) -> None:
        self.kernel, self.C, self.gamma, self.tol = kernel, C, gamma, tol

    def fit(self, x: np.ndarray, y: np.ndarray) -> Any:
        return SVC(kernel=self.kernel, C=self.C, gamma=self.gamma, tol=self.tol).fit(x, y)

    def k(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.kernel == "linear":
            return a @ b.T
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return np.exp(-self.gamma * np.maximum(d2, 0.0))

    def dk(self, a: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``d K(a_i, u) / d u`` for every row of ``a``: ``(len(a), D)``."""
        if self.kernel == "linear":
            return a.copy()
        return 2 * self.gamma * (a - u) * self.k(a, u[None])

    def dk_self(self, u: np.ndarray) -> np.ndarray:
        """``d K(u, u) / d u``: ``2u`` for the linear kernel, 0 for RBF."""
        return 2 * u if self.kernel == "linear" else np.zeros_like(u)


def hinge(model: Any, x_val: np.ndarray, y_val: np.ndarray) -> float:
    """Mean validation hinge loss of a fitted SVC; ``y_val`` in {-1, +1}."""
    return float(np.maximum(0.0, 1.0 - y_val * model.decision_function(x_val)).mean())


def hinge_gradient(svm: _Svm, model: Any, x: np.ndarray, y: np.ndarray, x_val: np.ndarray,
                   y_val: np.ndarray, c: int) -> np.ndarray:
    """``d mean-hinge / d x_c`` through the KKT conditions (Biggio et al. 2012, eqs. 7-10).

    The paper holds ``alpha_c`` fixed, which is exact while the attack point is an error vector
    (``alpha_c = C``). When it is a margin vector (``0 < alpha_c < C``) its own margin condition
    joins the linear system and ``alpha_c`` moves, as in the incremental SVM (Cauwenberghs and
    Poggio, NIPS 2000) on which the paper builds. ``model`` is the SVC fitted on ``(x, y)``
    (labels in {-1, +1}); ``c`` is the row of the attack point. Without any margin vector the
    KKT conditions do not pin ``b`` (libsvm then takes the middle of its feasible interval) and
    ``db/du`` is taken as 0, an approximation; real training sets have margin vectors. Zero
    when the attack point is not a support vector (it has no influence).
    """
    alpha = np.zeros(x.shape[0])
    alpha[model.support_] = np.abs(model.dual_coef_[0])
    u, a_c = x[c], alpha[c]
    if a_c <= 0:
        return np.zeros_like(u)
    coef = y[c] * a_c
    s = np.flatnonzero((alpha > 1e-8 * svm.C) & (alpha < svm.C * (1 - 1e-8)))
    if s.size:
        m = np.zeros((s.size + 1, s.size + 1))
        m[:-1, :-1], m[:-1, -1], m[-1, :-1] = svm.k(x[s], x[s]), 1.0, 1.0
        rhs = np.zeros((s.size + 1, u.size))
        rhs[:-1] = -coef * svm.dk(x[s], u)
        own = np.flatnonzero(s == c)
        if own.size:  # x_c is itself a margin vector: y_c f(x_c) = 1 must keep holding, and
            # alpha_c moves with it; its row differentiates f(u) in u through every kernel term
            others = np.flatnonzero(alpha > 0)
            others = others[others != c]
            grad_f = (y[others] * alpha[others]) @ svm.dk(x[others], u) + coef * svm.dk_self(u)
            rhs[own[0]] = -grad_f
        sol = np.linalg.lstsq(m, rhs, rcond=None)[0]
        beta, db = sol[:-1], sol[-1]
    else:
        beta, db = np.zeros((0, u.size)), np.zeros(u.size)
    f = model.decision_function(x_val)
    v = np.flatnonzero(y_val * f < 1)
    if v.size == 0:
        return np.zeros_like(u)
    yv = y_val[v]
    df = (yv @ svm.k(x_val[v], x[s])) @ beta + yv.sum() * db + coef * (yv @ svm.dk(x_val[v], u))
    return -df / x_val.shape[0]


def _start(svm: _Svm, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
           source: np.ndarray, pool: np.ndarray, y_c: float, candidates: int,
           generator: torch.Generator | None) -> int:
    """The starting row of ``source``: of ``candidates`` random rows of ``pool`` that, labelled
    ``y_c``, are margin errors of the current SVM (``y_c f(x) <= -1``, so the clone gets
    ``alpha = C`` and moves the SVM), the one whose clone gives the highest validation hinge
    loss. The paper clones one arbitrary row; once earlier points have moved the boundary, an
    arbitrary clone may have no influence (``alpha = 0``, no gradient) or may even help the
    learner."""
    errors = pool[y_c * svm.fit(x, y).decision_function(source[pool]) <= -1]
    choices = errors if errors.size else pool
    pick = torch.randperm(choices.size, generator=generator)[:candidates].numpy()
    losses = [hinge(svm.fit(np.vstack([x, source[i]]), np.append(y, y_c)), x_val, y_val)
              for i in choices[pick]]
    return int(choices[pick[int(np.argmax(losses))]])


def _ascend(svm: _Svm, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
            u: np.ndarray, y_c: float, lo: np.ndarray, hi: np.ndarray, step: float,
            max_steps: int, tol: float) -> tuple[np.ndarray, tuple[float, float], int]:
    """Gradient ascent of the validation hinge loss over one attack point, with backtracking."""
    xa, ya, c = np.vstack([x, u]), np.append(y, y_c), x.shape[0]
    model = svm.fit(xa, ya)
    best = start = hinge(model, x_val, y_val)
    max_step, n = step, 0
    for n in range(1, max_steps + 1):  # noqa: B007
        g, size = _direction(svm, model, xa, ya, x_val, y_val, c, lo, hi)
        if size == 0:
            break
        while step >= tol:
            trial = xa.copy()
            trial[c] = np.clip(xa[c] + step * g / size, lo, hi)
            trial_model = svm.fit(trial, ya)
            loss = hinge(trial_model, x_val, y_val)
            if loss > best:
                xa, model, best = trial, trial_model, loss
                step = min(2 * step, max_step)
                break
            step /= 2
        else:
            break
    return xa[c], (start, best), n


def _direction(svm: _Svm, model: Any, xa: np.ndarray, ya: np.ndarray, x_val: np.ndarray,
               y_val: np.ndarray, c: int, lo: np.ndarray,
               hi: np.ndarray) -> tuple[np.ndarray, float]:
    """The KKT gradient at the attack point (row ``c``), without the components that the bounds
    would clip away (so that a normalised step spends its whole length on coordinates that can
    move), and its L2 norm."""
    g = hinge_gradient(svm, model, xa, ya, x_val, y_val, c)
    g = movable(torch.from_numpy(g), torch.from_numpy(xa[c]), torch.from_numpy(lo),
                torch.from_numpy(hi)).numpy()
    return g, float(np.linalg.norm(g))


def _ascend_fixed(svm: _Svm, x: np.ndarray, y: np.ndarray, x_val: np.ndarray,
                  y_val: np.ndarray, u: np.ndarray, y_c: float, lo: np.ndarray, hi: np.ndarray,
                  step: float, max_steps: int,
                  patience: float) -> tuple[np.ndarray, tuple[float, float], int]:
    """Algorithm 1 with the authors' schedule: every step of length ``step`` along the unit
    gradient is taken (projected on the box); stop when the validation error has not risen over
    the last ``patience`` steps. Returns the point of highest validation hinge loss visited."""
    xa, ya, c = np.vstack([x, u]), np.append(y, y_c), x.shape[0]
    model = svm.fit(xa, ya)
    best = start = hinge(model, x_val, y_val)
    best_u, errors, n = xa[c].copy(), [_error(model, x_val, y_val)], 0
    wait = int(patience)
    for n in range(1, max_steps + 1):  # noqa: B007
        g, size = _direction(svm, model, xa, ya, x_val, y_val, c, lo, hi)
        if size == 0:
            break
        xa[c] = np.clip(xa[c] + step * g / size, lo, hi)
        model = svm.fit(xa, ya)
        loss = hinge(model, x_val, y_val)
        errors.append(_error(model, x_val, y_val))
        if loss > best:
            best, best_u = loss, xa[c].copy()
        if n > wait and errors[-1] - errors[-1 - wait] <= 1e-6:
            break
    return best_u, (start, best), n


def _error(model: Any, x_val: np.ndarray, y_val: np.ndarray) -> float:
    return float((np.sign(model.decision_function(x_val)) != y_val).mean())
