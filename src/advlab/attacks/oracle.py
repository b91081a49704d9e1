"""The black-box door: an :class:`Oracle` answers queries with labels or probabilities only.

A black-box attacker (Papernot et al. 2017's substitute training, Square Attack, HopSkipJump)
never holds the model: it holds an :class:`Oracle`, which evaluates the model under
``torch.no_grad()`` in eval mode and returns detached outputs, so no gradient can flow back to
the model or its parameters. The oracle counts every input it evaluates (one query = one input
row), in total and per sample when the attack says which sample a row belongs to, and refuses a
call that would exceed its budget with :class:`QueryBudgetExceeded` *before* evaluating anything,
so the count is exact: it equals the number of rows the model saw.

``output`` says what the attacker sees:

* ``"labels"``: the predicted class (decision-based attacks: HopSkipJump, substitute training);
* ``"probabilities"``: the softmax of the logits (score-based attacks: Square Attack);
* ``"logits"``: the raw logits, only when explicitly allowed (a stronger, grey-box oracle).

Labels can always be asked for (:meth:`Oracle.labels`): they follow from any of the three.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import Tensor

from advlab.models.wrappers import eval_mode

Output = Literal["labels", "probabilities", "logits"]
OUTPUTS: tuple[Output, ...] = get_args(Output)


class QueryBudgetExceeded(RuntimeError):
    """An oracle's query budget is exhausted.

    Attributes:
        queries: queries spent when the call was refused (the refused call is not counted).
        budget: the oracle's budget.
        requested: rows of the refused call.
        partial: the attack's best result so far, ``(N, *D)`` like its input, when the attack
            caught the error and attached it (``None`` when raised by the oracle itself).
        per_sample: queries per sample at that point, ``(N,)`` int64, when known.
    """

    def __init__(self, message: str, *, queries: int, budget: int, requested: int,
                 partial: Tensor | None = None, per_sample: Tensor | None = None) -> None:
        super().__init__(message)
        self.queries, self.budget, self.requested = queries, budget, requested
        self.partial, self.per_sample = partial, per_sample

    def with_partial(self, where: str, partial: Tensor,
                     per_sample: Tensor | None) -> QueryBudgetExceeded:
        """The same error, re-raised by an attack with its partial result attached."""
        return QueryBudgetExceeded(
            f"{where}: {self.args[0]}; the partial result (best point per sample so far) is in "
            "the error's .partial", queries=self.queries, budget=self.budget,
            requested=self.requested, partial=partial.detach(), per_sample=per_sample)


class Oracle:
    """A model seen through its outputs only, with exact query accounting and a budget.

    Args:
        model: any callable returning logits (an ``nn.Module`` is run in eval mode, its own
            mode restored after each call).
        output: ``"labels"``, ``"probabilities"`` or ``"logits"`` (see the module docstring).
        max_queries: total budget in queries (input rows); ``None`` for no budget.
        num_samples: number of samples of the attacked batch, to count queries per sample
            (:attr:`per_sample`); rows then carry their sample's index in ``index=``.

    Attributes:
        queries: input rows evaluated so far. calls: model calls so far.
        per_sample: ``(num_samples,)`` int64 counts, or ``None`` without ``num_samples``.
    """

    def __init__(self, model: Callable[[Tensor], Tensor], *, output: Output = "labels",
                 max_queries: int | None = None, num_samples: int | None = None) -> None:
        if isinstance(model, Oracle):
            raise ValueError("Oracle: model is already an Oracle; pass it to the attack as is")
        if not callable(model):
            raise ValueError(f"Oracle: model must be callable, got {type(model).__name__}")
        if output not in OUTPUTS:
            raise ValueError(f"Oracle: output must be one of {OUTPUTS}, got {output!r}")
        if max_queries is not None and (isinstance(max_queries, bool) or max_queries < 0):
            raise ValueError(f"Oracle: max_queries must be >= 0 or None, got {max_queries!r}")
        if num_samples is not None and num_samples < 0:
            raise ValueError(f"Oracle: num_samples must be >= 0 or None, got {num_samples!r}")
        self._model = model
        self.output: Output = output
        self.max_queries = max_queries
        self.num_samples = num_samples
        self.queries = 0
        self.calls = 0
        self.per_sample: Tensor | None = (None if num_samples is None else
                                          torch.zeros(num_samples, dtype=torch.long))

    def __repr__(self) -> str:
        return (f"Oracle(output={self.output!r}, queries={self.queries}, "
                f"max_queries={self.max_queries})")

    @property
    def remaining(self) -> int | None:
        """Queries left in the budget (``None``: no budget)."""
        return None if self.max_queries is None else self.max_queries - self.queries

    def reset(self) -> None:
        """Zero the counters (the budget applies again from zero)."""
        self.queries = self.calls = 0
        if self.per_sample is not None:
            self.per_sample.zero_()

    def __call__(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """The oracle's answer for each row of ``x``: labels ``(n,)`` int64, or probabilities /
        logits ``(n, C)``, detached. ``index`` (``(n,)`` int64) names each row's sample."""
        logits = self._evaluate(x, index)
        if self.output == "labels":
            return logits.argmax(dim=1)
        if self.output == "probabilities":
            return logits.softmax(dim=1)
        return logits

    def labels(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """Predicted classes ``(n,)`` int64, whatever the output mode (costs the same queries)."""
        return self._evaluate(x, index).argmax(dim=1)

    def _evaluate(self, x: Tensor, index: Tensor | None) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 2:
            raise ValueError(f"Oracle: x must be a tensor (n, *D), got shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
        n = int(x.shape[0])
        if index is not None and (index.shape != (n,) or index.dtype != torch.long):
            raise ValueError(f"Oracle: index must be int64 of shape ({n},), got {index.dtype} "
                             f"{tuple(index.shape)}")
        if self.max_queries is not None and self.queries + n > self.max_queries:
            raise QueryBudgetExceeded(
                f"query budget of {self.max_queries} exhausted: {self.queries} queries spent, "
                f"a call for {n} more was refused", queries=self.queries,
                budget=self.max_queries, requested=n,
                per_sample=None if self.per_sample is None else self.per_sample.clone())
        with torch.no_grad(), eval_mode(self._model):
            logits = self._model(x.detach())
        if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != n:
            raise ValueError(f"Oracle: the model must return logits (n, C) = ({n}, C), got "
                             f"shape {tuple(getattr(logits, 'shape', ()))}")
        self.queries += n
        self.calls += 1
        if self.per_sample is not None and index is not None:
            self.per_sample.index_add_(0, index.cpu(), torch.ones(n, dtype=torch.long))
        return logits.detach()


def as_oracle(model: Callable[[Tensor], Tensor] | Oracle, name: str, output: Output,
              num_samples: int) -> Oracle:
    """The oracle an attack queries: ``model`` itself when it is an :class:`Oracle` (checked to
    give at least ``output``), else a fresh one without a budget."""
    if isinstance(model, Oracle):
        if output == "probabilities" and model.output == "labels":
            raise ValueError(f"{name} is score-based: it needs an Oracle with output "
                             "'probabilities' (or 'logits'), got one that gives labels only")
        if model.num_samples is not None and model.num_samples != num_samples:
            raise ValueError(f"{name}: the Oracle counts queries for num_samples="
                             f"{model.num_samples} samples, but x has {num_samples}")
        return model
    return Oracle(model, output=output, num_samples=num_samples)


def log_probabilities(scores: Tensor, output: Output) -> Tensor:
    """Log-probabilities from an oracle's scores (probabilities, or logits when allowed).

    A margin between log-probabilities equals the margin between logits (the log-partition
    cancels), so score-based attacks lose nothing by seeing probabilities only. Probabilities
    that underflowed to 0 are floored at the smallest normal float.
    """
    if output == "logits":
        return scores.log_softmax(dim=1)
    return scores.clamp_min(torch.finfo(scores.dtype).tiny).log()
