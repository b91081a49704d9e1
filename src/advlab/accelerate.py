"""Gradient passes for the gradient-sign attacks: eager float32 (the reference), compiled, and in
lower precision. The last two are opt-in.

:func:`gradient_pass` returns a :class:`GradientPass`, a callable ``(x, y, target) -> (logits,
per-sample loss, d loss / d x)`` with the contract of :func:`advlab.losses.logits_and_grad`:

* ``compile=True`` runs the model's forward and the loss through :func:`torch.compile` (inductor).
  The backward comes from AOTAutograd and computes the input's gradient only: the parameters are
  handed to the compiled graph detached, so no weight gradient is computed. The batch dimension is
  dynamic on the CPU (the active batch shrinks as samples succeed: one compilation, not one per
  size). On CUDA the graphs are captured once per shape (``mode="reduce-overhead"``, CUDA graphs),
  and the active batch is padded with copies of its last row up to the next of a few bucket sizes
  (powers of two from 8), so that a handful of graphs serve every size; on the CPU a single row
  is padded to two (dynamo specialises the size 1: it would compile a second graph). Rows are
  independent in eval mode, so padding and compiling change no result beyond float rounding.
* ``precision="bf16"`` or ``"fp16"`` runs the forward and backward under :func:`torch.autocast`.
  The pass then only *proposes*: :attr:`GradientPass.exact` is False, and the attacks confirm every
  success with a float32 forward (:meth:`GradientPass.forward`), which is also what scores them.
  float16 scales the loss by :data:`FP16_LOSS_SCALE` before the backward (steepest-ascent
  directions do not depend on the scale; it is divided out) and recomputes in float32 the rows whose
  gradient is still not finite.

Compiled passes are kept per model, loss and precision (a small cache, :data:`CACHE_SIZE`
entries), so repeated attack calls, e.g. over the batches of an evaluation, compile once. A
:class:`~advlab.models.wrappers.QueryCounter` is unwrapped for compiling; the pass then reports
its rows to it (:meth:`QueryCounter.record`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from advlab.losses import get_loss, logits_and_grad
from advlab.models import batching
from advlab.models.wrappers import QueryCounter

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
FP16_LOSS_SCALE = 2.0 ** 12
"""Loss scale of float16 backward passes (keeps small input gradients out of the subnormals)."""
CACHE_SIZE = 8
"""Compiled passes kept (least recently used dropped first)."""
MIN_BUCKET = 8

Model = Callable[[Tensor], Tensor]
_compiled: OrderedDict[tuple[Any, ...], Callable[..., tuple[Tensor, Tensor]]] = OrderedDict()


def check_precision(precision: str, device: torch.device | str = "cpu") -> None:
    """``ValueError`` unless ``precision`` is one of :data:`PRECISIONS` and autocast can run it on
    ``device``'s type."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    kind = torch.device(device).type
    if precision != "fp32" and not torch.amp.is_autocast_available(kind):
        raise ValueError(f"precision {precision!r}: autocast is not available on {kind!r}")
    if precision == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("precision 'bf16': this CUDA device has no bfloat16 support (use "
                         "'fp16' or 'fp32')")


def native(precision: Precision, device: torch.device | str = "cpu") -> bool:
    """True when ``device`` computes in ``precision`` natively (else autocast emulates it, which
    is correct but usually slower: on a CPU without AVX512-BF16/FP16 or AMX)."""
    dev = torch.device(device)
    if precision == "fp32":
        return True
    if dev.type == "cuda":
        return precision == "fp16" or torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        probe = (torch.ops.mkldnn._is_mkldnn_bf16_supported if precision == "bf16"
                 else torch.ops.mkldnn._is_mkldnn_fp16_supported)
        return bool(probe())
    return False


def bucket(rows: int) -> int:
    """The padded batch size of a CUDA-graph pass: the next power of two, at least 8."""
    return max(MIN_BUCKET, 1 << max(0, rows - 1).bit_length())


class GradientPass:
    """``(x, y, target) -> (logits, per-sample loss, d loss / d x)``, all detached; see the module
    docstring. Build it with :func:`gradient_pass`."""

    def __init__(self, model: Model, loss: str, compile: bool, precision: Precision) -> None:
        get_loss(loss)
        self.model, self.loss, self.compile, self.precision = model, loss, compile, precision
        self.counter = model if isinstance(model, QueryCounter) else None
        self.inner: Model = model.model if isinstance(model, QueryCounter) else model

    @property
    def exact(self) -> bool:
        """True when the pass's logits may decide success (float32, eager or compiled)."""
        return self.precision == "fp32"

    def forward(self, x: Tensor) -> Tensor:
        """Float32 logits of the model itself, without grad: the check of a success."""
        with torch.no_grad():
            return batching.forward(self.model, x)

    def __call__(self, x: Tensor, y: Tensor,
                 target: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        if not self.compile and self.precision == "fp32":
            return logits_and_grad(self.model, x, y, loss=self.loss, target=target)
        if batching.chunk_count(self.inner, x) == 0:  # first call: measure in float32, eagerly
            out = logits_and_grad(self.inner, x, y, loss=self.loss, target=target)
        else:
            out = batching.map_rows(self.inner, self._one_pass, x, y, target)
        if self.counter is not None:
            self.counter.record(int(x.shape[0]), gradient=True)
        return out  # type: ignore[return-value]

    def _one_pass(self, x: Tensor, y: Tensor, t: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        rows = x.shape[0]
        cuda = x.device.type == "cuda"
        # CUDA graphs: a few bucket sizes. CPU: one dynamic graph, but dynamo specialises size 1,
        # so a single row is padded to two rather than paying a second compilation
        padded = self.compile and (cuda or rows == 1)
        if padded:
            size = bucket(rows) if cuda else 2
            x, y, t = (None if v is None else _pad(v, size) for v in (x, y, t))
        fn = self._compiled(x) if self.compile else self._eager
        scale = FP16_LOSS_SCALE if self.precision == "fp16" else 1.0
        with torch.enable_grad():
            x_req = x.detach().requires_grad_(True)
            if self.precision == "fp32":
                logits, values = fn(x_req, y, t)
            else:
                with torch.autocast(x.device.type, dtype=_DTYPES[self.precision]):
                    logits, values = fn(x_req, y, t)
            (grad,) = torch.autograd.grad(values.sum() * scale, x_req)
        logits, values = logits.detach().to(x.dtype), values.detach().to(x.dtype)
        if scale != 1.0:
            grad = grad / scale
        if padded:
            logits, values, grad = logits[:rows], values[:rows], grad[:rows]
            x, y, t = x[:rows], y[:rows], None if t is None else t[:rows]
        if self.precision == "fp16":
            grad = self._finite(grad, x, y, t)
        return logits, values, grad.to(x.dtype)

    def _eager(self, x: Tensor, y: Tensor, t: Tensor | None) -> tuple[Tensor, Tensor]:
        logits = self.inner(x)
        return logits, get_loss(self.loss)(logits.to(x.dtype), y, t)

    def _finite(self, grad: Tensor, x: Tensor, y: Tensor, t: Tensor | None) -> Tensor:
        bad = ~torch.isfinite(grad.flatten(1)).all(dim=1)
        if bool(bad.any()):
            rows = bad.nonzero()[:, 0]
            grad = grad.clone()
            grad[rows] = logits_and_grad(self.inner, x[rows], y[rows], loss=self.loss,
                                         target=None if t is None else t[rows])[2].to(grad.dtype)
        return grad

    def _compiled(self, x: Tensor) -> Callable[..., tuple[Tensor, Tensor]]:
        key = (id(self.inner), self.loss, self.precision, x.device.type, x.dtype)
        fn = _compiled.get(key)
        if fn is None or getattr(fn, "_advlab_model", None) is not self.inner:
            fn = _compile(self.inner, self.loss, cuda=x.device.type == "cuda")
            _compiled[key] = fn
            while len(_compiled) > CACHE_SIZE:
                _compiled.popitem(last=False)
        _compiled.move_to_end(key)
        return fn


def _compile(model: Model, loss: str, *, cuda: bool) -> Callable[..., tuple[Tensor, Tensor]]:
    """torch.compile of ``model`` and the loss, with the parameters detached (input gradients
    only)."""
    fn = get_loss(loss)
    if isinstance(model, torch.nn.Module):
        params = {k: v.detach() for k, v in model.named_parameters()}
        buffers = dict(model.named_buffers())
        module = model

        def run(x: Tensor) -> Tensor:
            return torch.func.functional_call(module, (params, buffers), (x,))
    else:
        run = model

    def forward(x: Tensor, y: Tensor, t: Tensor | None) -> tuple[Tensor, Tensor]:
        logits = run(x)
        return logits, fn(logits.to(x.dtype), y, t)

    compiled = torch.compile(forward, dynamic=not cuda, mode="reduce-overhead" if cuda else None)
    compiled._advlab_model = model  # type: ignore[attr-defined]  # guards against id() reuse
    return compiled  # type: ignore[no-any-return]


def _pad(v: Tensor, rows: int) -> Tensor:
    """``v`` with its last row repeated up to ``rows`` rows."""
    extra = rows - v.shape[0]
    return v if extra <= 0 else torch.cat([v, v[-1:].expand(extra, *v.shape[1:])])


def gradient_pass(model: Model, loss: str = "ce", *, compile: bool = False,
                  precision: Precision = "fp32",
                  device: torch.device | str = "cpu") -> GradientPass:
    """The gradient pass of ``model`` for ``loss``; ``compile`` and ``precision`` as in the
    module docstring (``device``: where the inputs will be, for the precision check)."""
    check_precision(precision, device)
    if not isinstance(compile, bool):
        raise ValueError(f"compile must be a bool, got {compile!r}")
    return GradientPass(model, loss, compile, precision)
