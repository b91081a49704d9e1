"""advlab against torchattacks, ART and Foolbox: same models, same samples, same budgets.

Usage: .venv/bin/python benchmarks/compare.py [--quick] [--only ATTACK[,ATTACK]] [--repeats 3]
                                              [--nsl-kdd DIR] [--max-seconds 60]

One process trains the two models once (the digits small_cnn on 28×28 upsampled digits and the
NSL-KDD MLP), then runs each attack with every library on the same samples and budget, and prints
one markdown table per attack and data set:

* time: median over at least ``--repeats`` runs (101 when every run of the first round took
  < 0.05 s, 15 when < 0.5 s, 5 when < 3 s; rounded up to whole cycles of the order design when
  there are at least as many), the libraries interleaved within each round in the orders of a
  Williams design (over a cycle every library runs in every position, and right after every
  other library, equally often); a run slower than
  ``--max-seconds`` is not repeated (its row says "1 run"); each library is first warmed up (and
  checked) on 8 samples (2 for JSMA, none for C&W);
* time ÷ (gradient steps × one forward+backward of the model on the same batch, measured in the
  same rounds), with the number of gradient steps assumed given per row;
* robust accuracy (fixed-eps attacks: the fraction of samples correctly classified after the
  attack) or success rate (minimal-norm and targeted attacks), from
  :func:`advlab.scoring.score`, the same rule for every library: an output outside the ball
  or the box counts as not adversarial;
* the median L2 and L∞ of the successful perturbations of the samples that were correctly
  classified clean (already misclassified samples need no perturbation).

A last table checks advlab's first row of each table against the project's bars.

Scores come from the last timed run of each library. Reference libraries that raise are reported
in their row (exception type and message) and the script goes on; advlab errors are not caught.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import (
    DEFAULT_NSL_KDD,
    Subject,
    digits_subject,
    environment,
    fmt,
    forward_backward,
    log,
    median,
    nsl_kdd_subject,
    table,
    timed,
)
from torch import Tensor, nn

import advlab
from advlab import Domain, ThreatModel
from advlab.attacks import bim, carlini_wagner_l2, deepfool, fgsm, jsma, pgd, targets
from advlab.losses import logits_and_grad
from advlab.models.batching import chunk_count
from advlab.scoring import score

Runner = Callable[[Tensor, Tensor, Tensor | None], Tensor]
ATTACK_NAMES = ("fgsm", "bim", "pgd", "pgd-l2", "deepfool", "cw", "jsma")
LIBRARIES = ("torchattacks", "adversarial-robustness-toolbox", "foolbox", "eagerpy")
BOX = Domain(0.0, 1.0)
EPS = {"digits": 0.1, "nsl-kdd": 0.05}


@dataclass
class Entry:
    """One library's configured attack."""

    library: str
    run: Runner | None  # None: the library has no such attack (``skip`` says why)
    steps: int  # gradient steps assumed for the ratio column
    threat: ThreatModel | None = None  # scoring threat, when not the case's
    skip: str = ""

    @property
    def is_advlab(self) -> bool:
        return self.library.startswith("advlab")


@dataclass
class Case:
    """One attack on one data set: the samples, the scoring threat and the libraries."""

    title: str
    subject: Subject
    x: Tensor
    y: Tensor
    threat: ThreatModel
    minimal: bool  # report the success rate (minimal-norm / targeted) instead of robust accuracy
    entries: list[Entry]
    target: Tensor | None = None
    notes: list[str] = field(default_factory=list)
    warmup: int = 8  # samples of the per-library warm-up run (0: none)
    shown: tuple[str, str] = ("l2", "linf")  # the two norms of the perturbation columns


# ----------------------------------------------------------------------------- library adapters
class Libraries:
    """Each reference library's view of one subject's model, built once."""

    def __init__(self, subject: Subject) -> None:
        import foolbox as fb
        from art.estimators.classification import PyTorchClassifier

        model = subject.model.eval()
        self.model = model
        self.classes = subject.num_classes
        self.art = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(),
                                     input_shape=tuple(subject.x.shape[1:]),
                                     nb_classes=self.classes, clip_values=(0.0, 1.0),
                                     device_type="cpu")
        self.fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0))

    def onehot(self, labels: Tensor) -> np.ndarray:
        return np.eye(self.classes, dtype=np.float32)[labels.numpy()]

    def art_runner(self, attack: object, targeted: bool = False,
                   labels: bool = True) -> Runner:
        def go(x: Tensor, y: Tensor, t: Tensor | None) -> Tensor:
            cls = t if targeted else y
            kwargs = {"y": self.onehot(cls)} if labels and cls is not None else {}
            out = attack.generate(x.numpy().copy(), **kwargs)  # type: ignore[attr-defined]
            return torch.from_numpy(np.asarray(out, dtype=np.float32)).reshape(x.shape)

        return go

    def fb_runner(self, attack: object, eps: float | None) -> Runner:
        def go(x: Tensor, y: Tensor, t: Tensor | None) -> Tensor:
            _, clipped, _ = attack(self.fmodel, x, y, epsilons=eps)  # type: ignore[operator]
            return clipped

        return go

    @staticmethod
    def ta_runner(attack: object, targeted: bool = False) -> Runner:
        def go(x: Tensor, y: Tensor, t: Tensor | None) -> Tensor:
            return attack(x, t if targeted else y)  # type: ignore[operator]

        return go


# ----------------------------------------------------------------------------- the cases
def gradient_cases(kind: str, subject: Subject, libs: Libraries, n: int) -> list[Case]:
    """FGSM, BIM, PGD L∞ and PGD L2: fixed-eps attacks scored by robust accuracy."""
    import foolbox as fb
    import torchattacks as ta
    from art.attacks.evasion import (
        BasicIterativeMethod,
        FastGradientMethod,
    )

    model, name = subject.model, subject.name
    norm = "l2" if kind == "pgd-l2" else "linf"
    eps = 1.5 if kind == "pgd-l2" else EPS[name]
    threat = ThreatModel(norm, eps, BOX)
    tabular = name == "nsl-kdd"
    real = ThreatModel(norm, eps, subject.dataset.domain) if tabular else None
    x, y = subject.x[:n], subject.y[:n]
    calls = iter(range(1 << 30))

    def seeded() -> torch.Generator:
        """A new seed for every run, as the references draw theirs from the advancing global
        RNGs: the robust accuracy is then a mean over as many random starts for everyone."""
        return torch.Generator().manual_seed(next(calls))

    entries: list[Entry]
    notes: list[str] = []
    if kind == "fgsm":
        title = f"FGSM L∞, eps = {eps}"
        steps = 1

        def ours(th: ThreatModel) -> Runner:
            return lambda x, y, t: fgsm(model, x, y, th)

        entries = [
            Entry("advlab", ours(threat), steps),
            Entry("torchattacks", libs.ta_runner(ta.FGSM(model, eps=eps)), steps),
            Entry("ART", libs.art_runner(FastGradientMethod(
                libs.art, norm=np.inf, eps=eps, batch_size=n)), steps),
            Entry("Foolbox", libs.fb_runner(fb.attacks.FGSM(), eps), steps),
        ]
    elif kind == "bim":
        steps, alpha = 10, 1.25 * eps / 10
        title = f"BIM L∞, eps = {eps}, 10 steps of {alpha:.5g} (= 1.25·eps/10)"

        def ours(th: ThreatModel) -> Runner:
            return lambda x, y, t: bim(model, x, y, th, steps=steps, step_size=alpha)

        entries = [
            Entry("advlab (early_stop=True, default)", ours(threat), steps),
            Entry("torchattacks", libs.ta_runner(ta.BIM(model, eps=eps, alpha=alpha,
                                                        steps=steps)), steps),
            Entry("ART", libs.art_runner(BasicIterativeMethod(
                libs.art, eps=eps, eps_step=alpha, max_iter=steps, batch_size=n,
                verbose=False)), steps),
            Entry("Foolbox", libs.fb_runner(fb.attacks.LinfBasicIterativeAttack(
                abs_stepsize=alpha, steps=steps, random_start=False), eps), steps),
        ]
    else:
        steps, alpha = 40, 2.5 * eps / 40
        label = "L2" if norm == "l2" else "L∞"
        # PGD L2 runs twice: with each library's own random start (advlab draws it uniformly in
        # the volume of the ball, as the issue asks, and so do ART and Foolbox; torchattacks
        # draws the radius uniformly, which puts it much nearer the centre in 784 dimensions),
        # and without a random start, where every library starts from the same point
        starts = (True, False) if norm == "l2" else (True,)
        cases = [pgd_case(kind, subject, libs, x, y, threat, norm, eps, steps, alpha, label, start,
                          seeded) for start in starts]
        if tabular:
            assert real is not None
            for case in cases:
                case.entries.append(Entry("advlab, NSL-KDD Domain (early_stop=True)",
                                          _pgd_runner(model, real, steps, alpha, True, True,
                                                      seeded), steps, threat=real))
        return cases
    if kind == "bim":
        notes.append("advlab bim stops each sample at its first success (its default); the "
                     "references run all 10 steps.")
    if tabular:
        assert real is not None
        suffix = " (early_stop=True)" if kind in ("bim", "pgd") else ""
        entries.append(Entry("advlab, NSL-KDD Domain" + suffix, ours(real), steps, threat=real))
    return [Case(title, subject, x, y, threat, False, entries, notes=notes)]


def _pgd_runner(model: nn.Module, th: ThreatModel, steps: int, alpha: float, early: bool,
                start: bool, seeded: Callable[[], torch.Generator], **passes: Any) -> Runner:
    return lambda x, y, t: pgd(model, x, y, th, steps=steps, step_size=alpha, restarts=1,
                               random_start=start, early_stop=early, generator=seeded(), **passes)


OPT_IN: list[dict[str, Any]] = []
"""advlab's opt-in gradient passes to time beside eager float32 (``--compile``, ``--precision``):
one extra advlab early_stop=True row per entry in the PGD L∞ tables."""


def _opt_in_label(passes: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in passes.items())


def pgd_case(kind: str, subject: Subject, libs: Libraries, x: Tensor, y: Tensor,
             threat: ThreatModel, norm: str, eps: float, steps: int, alpha: float, label: str,
             start: bool, seeded: Callable[[], torch.Generator]) -> Case:
    """One PGD table: advlab (early stopping on and off) and the three references."""
    import foolbox as fb
    import torchattacks as ta
    from art.attacks.evasion import ProjectedGradientDescent

    model = subject.model
    title = (f"PGD {label}, eps = {eps}, 40 steps of {alpha:.5g} (= 2.5·eps/40), "
             + ("random start, 1 restart" if start else "no random start"))
    if norm == "l2":
        ta_attack: object = ta.PGDL2(model, eps=eps, alpha=alpha, steps=steps,
                                     random_start=start)
        fb_attack: object = fb.attacks.L2PGD(abs_stepsize=alpha, steps=steps, random_start=start)
    else:
        ta_attack = ta.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=start)
        fb_attack = fb.attacks.LinfPGD(abs_stepsize=alpha, steps=steps, random_start=start)
    art_norm = 2 if norm == "l2" else np.inf
    entries = [
        Entry("advlab early_stop=True", _pgd_runner(model, threat, steps, alpha, True, start,
                                                    seeded), steps),
        Entry("advlab early_stop=False", _pgd_runner(model, threat, steps, alpha, False, start,
                                                     seeded), steps),
        Entry("torchattacks", libs.ta_runner(ta_attack), steps),
        Entry("ART", libs.art_runner(ProjectedGradientDescent(
            libs.art, norm=art_norm, eps=eps, eps_step=alpha, max_iter=steps,
            num_random_init=1 if start else 0, batch_size=len(x), verbose=False)), steps),
        Entry("Foolbox", libs.fb_runner(fb_attack, eps), steps),
    ]
    if norm == "linf":
        entries[2:2] = [Entry(f"advlab early_stop=True, {_opt_in_label(p)}", _pgd_runner(
            model, threat, steps, alpha, True, start, seeded, **p), steps) for p in OPT_IN]
    notes = ["advlab early_stop=True freezes each sample at its first success (the "
             "robust-accuracy setting); early_stop=False runs all 40 steps and returns "
             "the highest-loss iterate. The references run all 40 steps and return the "
             "last iterate."]
    if norm == "l2" and start:
        notes.append("Random starts differ: advlab, ART and Foolbox draw the start uniformly in "
                     "the volume of the L2 ball (so at radius ≈ eps in 784 dimensions), "
                     "torchattacks draws the radius uniformly in [0, eps]. The table without a "
                     "random start compares the implementations from the same start.")
    return Case(title, subject, x, y, threat, False, entries, notes=notes)


def deepfool_case(subject: Subject, libs: Libraries, n: int) -> Case:
    import foolbox as fb
    import torchattacks as ta
    from art.attacks.evasion import DeepFool

    model = subject.model
    threat = ThreatModel("l2", math.inf, BOX)
    k = min(10, subject.num_classes)
    steps = 50

    def ours(th: ThreatModel) -> Runner:
        return lambda x, y, t: deepfool(model, x, y, th, steps=steps, overshoot=0.02,
                                        candidates=10)

    entries = [
        Entry("advlab", ours(threat), steps),
        Entry("torchattacks", libs.ta_runner(ta.DeepFool(model, steps=steps, overshoot=0.02)),
              steps),
        Entry("ART", libs.art_runner(DeepFool(
            libs.art, max_iter=steps, epsilon=0.02, nb_grads=10, batch_size=n, verbose=False),
            labels=False), steps),
        Entry("Foolbox", libs.fb_runner(fb.attacks.L2DeepFoolAttack(
            steps=steps, candidates=10, overshoot=0.02), None), steps),
    ]
    notes = [f"{k} candidate classes ({k - 1} class-difference gradients per iteration); "
             "'steps assumed' = the 50 iterations allowed, each one Jacobian of the candidates.",
             "Overshoot 0.02: advlab and Foolbox scale the total perturbation by 1.02; ART "
             "scales the total at the end; torchattacks scales every step (compounding). "
             "torchattacks has no candidates option (all classes, one backward per class and "
             "sample, one sample at a time); ART attacks the predicted class, not y."]
    if subject.name == "nsl-kdd":
        entries.append(Entry("advlab, NSL-KDD Domain", ours(ThreatModel(
            "l2", math.inf, subject.dataset.domain)), steps,
            threat=ThreatModel("l2", math.inf, subject.dataset.domain)))
    return Case(f"DeepFool L2, 50 steps, overshoot 0.02, {k} candidates", subject,
                subject.x[:n], subject.y[:n], threat, True, entries, notes=notes)


def cw_case(subject: Subject, libs: Libraries, n: int) -> Case:
    import foolbox as fb
    import torchattacks as ta
    from art.attacks.evasion import CarliniL2Method

    model = subject.model
    threat = ThreatModel("l2", math.inf, BOX)
    bs, steps = 9, 100

    def ours(th: ThreatModel) -> Runner:
        return lambda x, y, t: carlini_wagner_l2(
            model, x, y, th, confidence=0.0, steps=steps, binary_search_steps=bs,
            initial_const=0.01, step_size=0.01, abort_early=True)

    entries = [
        Entry("advlab", ours(threat), bs * steps),
        Entry("torchattacks (c = 1, no binary search)", libs.ta_runner(
            ta.CW(model, c=1, kappa=0, steps=steps, lr=0.01)), steps),
        Entry("ART", libs.art_runner(CarliniL2Method(
            libs.art, confidence=0.0, learning_rate=0.01, binary_search_steps=bs,
            max_iter=steps, initial_const=0.01, batch_size=n, verbose=False)), bs * steps),
        Entry("Foolbox", libs.fb_runner(fb.attacks.L2CarliniWagnerAttack(
            binary_search_steps=bs, steps=steps, stepsize=0.01, confidence=0,
            initial_const=0.01, abort_early=True), None), bs * steps),
    ]
    notes = ["9 binary-search steps × 100 steps, lr 0.01, initial const 0.01, confidence 0, "
             "abort early (advlab, Foolbox). torchattacks CW has no binary search: one run of 100 "
             "Adam steps at c = 1 (its only option). ART's C&W has no abort-early and no Adam: "
             "gradient descent with a line search (up to 5 halvings / 5 doublings, each a "
             "forward pass), and each of its gradients is two class_gradient calls (one "
             "backward pass per distinct label in the batch).",
             "Foolbox returns an all-zero input where it found nothing; the common rule counts it "
             "as a success when the zero input is misclassified."]
    if subject.name == "nsl-kdd":
        real = ThreatModel("l2", math.inf, subject.dataset.domain)
        entries.append(Entry("advlab, NSL-KDD Domain", ours(real), bs * steps, threat=real))
    notes.append("No warm-up run for C&W (ART's alone would take about as long as a timed run).")
    return Case(f"C&W L2, {bs} × {steps} steps, lr 0.01, c0 0.01, κ 0", subject,
                subject.x[:n], subject.y[:n], threat, True, entries, notes=notes, warmup=0)


def jsma_case(subject: Subject, libs: Libraries, n: int) -> Case:
    import torchattacks as ta
    from art.attacks.evasion import SaliencyMapMethod

    model = subject.model
    x, y = subject.x[:n], subject.y[:n]
    d = math.prod(x.shape[1:])
    budget = math.floor(0.2 * d)
    threat = ThreatModel("l0", budget, BOX)
    tgt = targets.random(y, subject.num_classes, generator=torch.Generator().manual_seed(0))
    pairs = budget // 2

    def ours(use_logits: bool) -> Runner:
        return lambda x, y, t: jsma(model, x, y, threat, target=t, theta=1.0, gamma=0.2,
                                    use_logits=use_logits)

    ta_attack = ta.JSMA(model, theta=1.0, gamma=0.2)
    ta_attack.set_mode_targeted_by_label(quiet=True)
    entries = [
        Entry("advlab (softmax, default)", ours(False), pairs),
        Entry("advlab use_logits=True", ours(True), pairs),
        Entry("torchattacks (targets as labels)", libs.ta_runner(ta_attack, targeted=True),
              math.ceil(0.2 * d / 2)),
        Entry("ART (y = one-hot targets)", libs.art_runner(SaliencyMapMethod(
            libs.art, theta=1.0, gamma=0.2, batch_size=n, verbose=False), targeted=True),
              pairs + 1),
        Entry("Foolbox", None, 0, skip="Foolbox has no JSMA"),
    ]
    notes = [f"Targets: advlab.attacks.targets.random(y, 10, generator seeded 0), the same for "
             f"every library. Budget γ = 0.2 of {d} features: scored as an L0 ball of "
             f"floor(0.2·{d}) = {budget} features ('in threat' column); 'steps assumed' = the "
             "most pair updates each implementation allows.",
             "torchattacks and ART differentiate the logits (JSMA-Z); advlab's default uses the "
             "softmax (the paper's F), hence the extra use_logits=True row. ART picks the two "
             "largest target-gradient features (no β term); torchattacks runs one sample at a "
             "time, ceil(γ·D/2) = 79 pairs, so it may change 158 > 156 features; ART checks "
             "the budget after each pair, so it may too."]
    return Case(f"JSMA targeted (random targets), θ = 1, γ = 0.2 ({budget} of {d} features)",
                subject, x, y, threat, True, entries, target=tgt, notes=notes, warmup=2,
                shown=("l0", "l2"))


# ----------------------------------------------------------------------------- running a case
@dataclass
class Result:
    times: list[float] = field(default_factory=list)
    output: Tensor | None = None
    error: str = ""
    outputs: list[Tensor] = field(default_factory=list)  # every timed run's output


def rounds_for(first_round: list[float], repeats: int, quick: bool) -> int:
    """Cheap cases get more rounds (medians of tiny times are noisy): at least ``repeats``, 101
    when every run of the first round took < 0.05 s, 15 when < 0.5 s, 5 when < 3 s."""
    if quick or not first_round:
        return repeats
    slowest = max(first_round)
    return max(repeats, 101 if slowest < 0.05 else 15 if slowest < 0.5 else 5 if slowest < 3
               else repeats)


def balanced_orders(n: int) -> list[list[int]]:
    """A Williams (1949) design for ``n`` libraries: ``n`` orders (``2n`` when ``n`` is odd) in
    which every library takes every position, and follows every other library, equally often."""
    first, low, high = [0], 1, n - 1
    for i in range(1, n):
        first.append(low if i % 2 else high)
        low, high = (low + 1, high) if i % 2 else (low, high - 1)
    orders = [[(v + k) % n for v in first] for k in range(n)]
    return orders + [o[::-1] for o in orders] if n % 2 else orders


def execute(case: Case, repeats: int, max_seconds: float,
            quick: bool) -> tuple[dict[str, Result], Floor]:
    """Warm up, then time every library in interleaved rounds; reference errors are recorded,
    advlab errors propagate."""
    model, x, y, t = case.subject.model, case.x, case.y, case.target
    results = {e.library: Result(error=e.skip) for e in case.entries}
    live = [e for e in case.entries if e.run is not None]
    small = slice(0, min(case.warmup, len(x)))
    fb_step = forward_backward(model, x, y)
    fb_step()
    chunked_step = functools.partial(logits_and_grad, model, x, y)  # advlab's own pass
    chunked_step()  # the first call measures the activations per row
    for e in list(live) if case.warmup else []:  # warm-up and check on a few samples
        assert e.run is not None
        ts = None if t is None else t[small]
        if e.is_advlab:
            e.run(x[small], y[small], ts)
            continue
        try:
            e.run(x[small], y[small], ts)
        except Exception as err:  # a reference library failed: report it, go on
            results[e.library].error = f"{type(err).__name__}: {err}"
            live.remove(e)
    fb_times: list[float] = []
    chunked_times: list[float] = []
    rounds, r = repeats, 0
    while r < rounds:
        fb_times += [timed(fb_step)[0] for _ in range(5)]
        chunked_times += [timed(chunked_step)[0] for _ in range(5)]
        # a balanced order: over each cycle of the design every library runs in every position,
        # and right after every other library, equally often (it inherits that library's
        # allocations and cache state)
        design = balanced_orders(len(live))
        order = [live[i] for i in design[r % len(design)]]
        for e in order:
            res = results[e.library]
            if r > 0 and res.times and res.times[0] > max_seconds:
                continue
            assert e.run is not None
            log(f"  {case.subject.name} | {case.title[:40]} | {e.library} | run {r + 1}")
            if e.is_advlab:
                seconds, out = timed(lambda e=e: e.run(x, y, t))  # type: ignore[misc]
            else:
                try:
                    seconds, out = timed(lambda e=e: e.run(x, y, t))  # type: ignore[misc]
                except Exception as err:
                    res.error = f"{type(err).__name__}: {err}"
                    live.remove(e)
                    continue
            res.times.append(seconds)
            res.output = torch.as_tensor(out).detach().to(torch.float32).reshape(x.shape)
            res.outputs.append(res.output)
        if r == 0:
            rounds = rounds_for([results[e.library].times[0] for e in live
                                 if results[e.library].times], repeats, quick)
            cycle = len(balanced_orders(len(live))) if live else 1
            if rounds >= cycle:  # whole cycles of the design (slow cases keep their few rounds)
                rounds = -(-rounds // cycle) * cycle
        r += 1
    return results, Floor(median(fb_times), median(chunked_times), chunk_count(model, x))


@dataclass
class Row:
    """What one library achieved on one case."""

    entry: Entry
    seconds: float = float("nan")
    runs: int = 0
    value: float = float("nan")  # robust accuracy or success rate, in [0, 1]
    in_threat: float = float("nan")
    medians: tuple[float, ...] = ()
    error: str = ""


def evaluate(case: Case, results: dict[str, Result]) -> list[Row]:
    """Score every library's output with the same rule (:func:`advlab.scoring.score`)."""
    model, x, y = case.subject.model, case.x, case.y
    rows = []
    for e in case.entries:
        res = results[e.library]
        if res.output is None:
            rows.append(Row(e, error=res.error or "no output"))
            continue
        s = score(model, x, y, res.output, e.threat or case.threat, case.target)
        summary = s.summary()
        # random starts differ from run to run: the figure is the mean over every timed run
        key = "success_rate" if case.minimal else "robust_accuracy"
        value = float(np.mean([score(model, x, y, o, e.threat or case.threat, case.target)
                               .summary()[key] for o in res.outputs] or [summary[key]]))
        needed = s.success & s.clean_correct  # perturbations that were actually needed
        medians = tuple(float(getattr(s, p)[needed].median()) if needed.any() else float("nan")
                        for p in case.shown)
        rows.append(Row(e, median(res.times), len(res.times), value,
                        float(s.in_threat.float().mean()), medians))
    return rows


@dataclass
class Floor:
    """One forward+backward on the case's batch, the medians of the rounds: ``whole`` as the
    reference libraries run it (the floor of every ratio), ``chunked`` as advlab runs it, in
    ``chunks`` row chunks (:mod:`advlab.models.batching`)."""

    whole: float
    chunked: float
    chunks: int


def report(case: Case, rows: list[Row], floor: Floor) -> str:
    fb = floor.whole
    model, x, y = case.subject.model, case.x, case.y
    metric = "success rate" if case.minimal else "robust accuracy"
    names = {"l0": "L0", "l1": "L1", "l2": "L2", "linf": "L∞"}
    header = ["library", "time ms", "runs", "steps assumed", "time ÷ (steps × f+b)", metric,
              "in threat"] + [f"median {names[p]}" for p in case.shown]
    lines = []
    for row in rows:
        e = row.entry
        if row.error:
            lines.append([e.library, "skipped: " + row.error] + [""] * (len(header) - 2))
            continue
        ratio = row.seconds / (e.steps * fb) if e.steps else float("nan")
        lines.append([e.library, fmt(row.seconds * 1e3, 1), str(row.runs), str(e.steps),
                      fmt(ratio, 2), f"{100 * row.value:.1f} %", f"{100 * row.in_threat:.1f} %",
                      *(fmt(v, 1 if p == "l0" else 3) for p, v in zip(case.shown, row.medians,
                                                                       strict=True))])
    subject = case.subject
    with torch.no_grad():
        clean = 100 * float((model(x).argmax(1) == y).float().mean())
    shape = "×".join(str(v) for v in x.shape)
    chunk_note = "" if floor.chunks <= 1 else (
        f"; advlab's own pass runs it in {floor.chunks} row chunks, which keep its activations "
        f"out of fresh mmapped memory (advlab.models.batching): {floor.chunked * 1e3:.2f} ms, "
        f"{floor.chunked / fb:.2f}× the whole batch")
    out = [f"### {case.title} — {subject.name}, {shape}",
           "",
           f"Model: {'small_cnn' if subject.name == 'digits' else 'mlp'}, clean test accuracy "
           f"{100 * subject.test_accuracy:.1f} % (on these samples {clean:.1f} %); one forward+"
           f"backward on this batch: {fb * 1e3:.2f} ms (median of the rounds){chunk_note}. "
           "Scored with "
           f"ThreatModel({case.threat.norm!r}, {case.threat.eps:g}, box [0, 1]) unless the row "
           "says otherwise.",
           "",
           table(header, lines)]
    for note in case.notes:
        out += ["", "* " + note]
    return "\n".join(out)


def bars(case: Case, rows: list[Row]) -> list[str]:
    """advlab's main row against the project's bars; one line per bar, PASS / FAIL."""
    main = next(r for r in rows if r.entry.is_advlab)
    refs = [r for r in rows if not r.entry.is_advlab and not r.error]
    if not refs:
        return []
    where = f"{case.title.split(',')[0]} — {case.subject.name}"
    out = []
    fastest = min(refs, key=lambda r: r.seconds)
    if case.minimal:
        peers = [r for r in refs if r.value >= main.value - 1e-9 and r.medians[0] == r.medians[0]]
        if case.shown[0] == "l2" and peers:
            best = min(peers, key=lambda r: r.medians[0])
            q = main.medians[0] / best.medians[0]
            out.append(f"{'FAIL' if q > 1.05 else 'PASS'} | {where} | median L2 "
                       f"{main.medians[0]:.3f} = {q:.3f}× the best reference at equal or higher "
                       "success "
                       f"({best.entry.library}, {best.medians[0]:.3f}); bar ≤ 1.05×")
        top = max(refs, key=lambda r: r.value)
        if top.value > main.value + 0.005:
            out.append(f"FAIL | {where} | success {100 * main.value:.1f} % < "
                       f"{top.entry.library} {100 * top.value:.1f} %")
    else:
        best = min(refs, key=lambda r: r.value)
        gap = 100 * (main.value - best.value)
        out.append(f"{'FAIL' if gap > 0.5 else 'PASS'} | {where} | robust accuracy "
                   f"{100 * main.value:.1f} % vs best reference {100 * best.value:.1f} % "
                   f"({best.entry.library}): {gap:+.1f} points; bar ≤ +0.5")
    if case.title.startswith("PGD"):
        speedup = fastest.seconds / main.seconds
        # issue 20's bar is PGD-40 L∞ with early stopping on both models; PGD L2 is information
        bar = case.title.startswith("PGD L∞")
        verdict = ("FAIL" if speedup < 3 else "PASS") if bar else "info"
        out.append(f"{verdict} | {where} | {main.entry.library} "
                   f"{main.seconds * 1e3:.1f} ms: {speedup:.2f}× faster than the fastest reference"
                   f" ({fastest.entry.library}, {fastest.seconds * 1e3:.1f} ms); bar ≥ 3×")
        for r in rows:  # the opt-in passes (--compile, --precision): information
            if r.entry.is_advlab and r is not main and "early_stop=True" in r.entry.library \
                    and not r.error and r.entry.threat is None:
                out.append(f"info | {where} | {r.entry.library} {r.seconds * 1e3:.1f} ms: "
                           f"{fastest.seconds / r.seconds:.2f}× the fastest reference, "
                           f"{main.seconds / r.seconds:.2f}× eager float32; robust accuracy "
                           f"{100 * (r.value - main.value):+.1f} points from eager float32")
    else:
        # "for the same budget": a reference that runs fewer gradient steps (torchattacks' C&W,
        # one c and no binary search) is reported, not used for the bar
        same = [r for r in refs if r.entry.steps >= main.entry.steps]
        for r in sorted(refs, key=lambda r: r.seconds):
            if r in same:
                continue
            out.append(f"info | {where} | {r.entry.library} {r.seconds * 1e3:.1f} ms runs "
                       f"{r.entry.steps} gradient steps to advlab's {main.entry.steps} "
                       f"({main.seconds * 1e3:.1f} ms): not the same budget")
        if same:
            fastest = min(same, key=lambda r: r.seconds)
            speedup = fastest.seconds / main.seconds
            out.append(f"{'FAIL' if speedup < 1 else 'PASS'} | {where} | {main.entry.library} "
                       f"{main.seconds * 1e3:.1f} ms vs fastest reference with the same budget "
                       f"{fastest.entry.library} {fastest.seconds * 1e3:.1f} ms "
                       f"({speedup:.2f}×); bar: not slower")
    return out


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 repeat, 32 digits / 128 NSL-KDD samples (16 for C&W "
                             "and JSMA)")
    parser.add_argument("--only", default="", metavar="ATTACK",
                        help=f"comma-separated subset of {', '.join(ATTACK_NAMES)}, or trees "
                        "(advlab's tree attacks against ART's: compare_trees.py), or autoattack "
                        "(against torchattacks and adv-lib: compare_autoattack.py)")
    parser.add_argument("--nsl-kdd", type=Path, default=DEFAULT_NSL_KDD, metavar="DIR")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 3)")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="a library run slower than this is not repeated")
    parser.add_argument("--compile", action="store_true",
                        help="add an advlab row with compile=True to the PGD L∞ tables")
    parser.add_argument("--precision", default="", metavar="P[,P]",
                        help="add advlab rows with precision=P (bf16, fp16) to the PGD L∞ tables")
    parser.add_argument("--digits-n", type=int, default=256)
    parser.add_argument("--nsl-kdd-n", type=int, default=1024)
    parser.add_argument("--slow-n", type=int, default=32,
                        help="digits samples for C&W and JSMA (the references' per-sample or "
                             "per-class loops make them slow)")
    args = parser.parse_args()
    only = [a.strip() for a in args.only.split(",") if a.strip()] or list(ATTACK_NAMES)
    if "trees" in only:  # the tree-ensemble section is self-contained: compare_trees.py
        import compare_trees

        compare_trees.run(args.nsl_kdd, quick=args.quick)
        only = [a for a in only if a != "trees"]
        if not only:
            return
    if "autoattack" in only:  # self-contained too: compare_autoattack.py (issue 15)
        import compare_autoattack

        compare_autoattack.run(args.nsl_kdd, quick=args.quick, repeats=args.repeats or 3)
        only = [a for a in only if a != "autoattack"]
        if not only:
            return
    unknown = sorted(set(only) - set(ATTACK_NAMES))
    if unknown:
        parser.error(f"unknown attack(s) {unknown}; choose from {', '.join(ATTACK_NAMES)}")
    repeats = args.repeats or (1 if args.quick else 3)
    OPT_IN.extend(([{"compile": True}] if args.compile else [])
                  + [{"precision": p.strip()} for p in args.precision.split(",") if p.strip()])
    n_digits, n_nsl, n_slow = ((32, 128, 16) if args.quick
                               else (args.digits_n, args.nsl_kdd_n, args.slow_n))
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("art").setLevel(logging.ERROR)
    torch.manual_seed(0)  # torchattacks and Foolbox draw random starts from the global RNG
    np.random.seed(0)  # ART from NumPy's

    print("# advlab vs torchattacks, ART and Foolbox\n")
    versions = [f"advlab {advlab.__version__}"] + [f"{p} {version(p)}" for p in LIBRARIES]
    print(", ".join(versions) + f"; {environment()}; numpy {np.__version__}\n")
    print(f"Times: median of at least {repeats} interleaved timed run(s) after a warm-up; runs "
          f"slower than {args.max_seconds:g} s are not repeated. Robust accuracy and success "
          "rate: the mean over the timed runs (random starts are drawn anew in every run, by "
          "every library); medians of norms: the last run.\n")
    log("training the digits small_cnn ...")
    subjects = [digits_subject(n_digits)]
    log("training the NSL-KDD MLP ...")
    nsl = nsl_kdd_subject(args.nsl_kdd, n_nsl)
    if nsl is None:
        print(f"NSL-KDD rows skipped: no data folder at {args.nsl_kdd} (pass --nsl-kdd DIR)\n")
    else:
        subjects.append(nsl)
        print("NSL-KDD: every library (advlab included) is given the box [0, 1] as its domain, "
              "since the reference libraries know nothing of the one-hot, integer, binary and "
              "immutable constraints of the encoded records; their outputs are generally not "
              "valid records. The extra 'advlab, NSL-KDD Domain' row runs advlab under the data "
              "set's real Domain and is scored against it (a stricter threat: not comparable "
              "row for row).\n")
    libs = {s.name: Libraries(s) for s in subjects}
    checks: list[str] = []
    for attack in only:
        for subject in subjects:
            lib = libs[subject.name]
            n = len(subject.x)
            if attack in ("fgsm", "bim", "pgd", "pgd-l2"):
                if attack == "pgd-l2" and subject.name != "digits":
                    continue
                cases = gradient_cases(attack, subject, lib, n)
            elif attack == "deepfool":
                cases = [deepfool_case(subject, lib, n)]
            elif attack == "cw":
                cases = [cw_case(subject, lib, n if subject.name != "digits"
                                 else min(n, n_slow))]
            else:
                if subject.name != "digits":
                    continue
                cases = [jsma_case(subject, lib, min(n, n_slow))]
            for case in cases:
                log(f"{attack} on {subject.name} ({len(case.x)} samples) ...")
                results, floor = execute(case, repeats, args.max_seconds, args.quick)
                rows = evaluate(case, results)
                print(report(case, rows, floor) + "\n", flush=True)
                checks += bars(case, rows)
    print("## advlab against the project's bars\n")
    print("Robust accuracy at most 0.5 points above the best reference (FGSM/BIM/PGD); median L2 "
          "at most 1.05× the best reference of equal or higher success (DeepFool/C&W); PGD-40 "
          "L∞ with early stopping at least 3× faster than the fastest reference (issue 20); "
          "FGSM, BIM, DeepFool, C&W and JSMA not slower than the fastest reference. advlab's "
          "first row of each table is checked.\n")
    print(table(["verdict", "attack — data", "measure"],
                [c.split(" | ", 2) for c in checks], "lll"))


if __name__ == "__main__":
    main()
