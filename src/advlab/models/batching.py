"""Row chunks that keep a model's activations small on the CPU.

A forward+backward pass keeps every activation that the backward needs. On a large batch these
are tens of MB each, and glibc serves any allocation above its mmap threshold (at most 32 MiB on
64-bit Linux) with a fresh ``mmap``: every call then page-faults its activations in again. On the
digits CNN at batch 256 (408 KB of saved activations per row) that costs about a third of the
pass. Running the batch in row chunks whose saved activations stay under :data:`CHUNK_BYTES`
keeps them in reused heap memory and in the last-level cache, and bounds peak memory.

The chunk size is measured, not guessed: the first gradient call for a model and a row shape
runs its first :data:`PROBE_ROWS` rows alone and records, through
:func:`torch.autograd.graph.saved_tensors_hooks`, the bytes of the saved tensors whose leading
dimension is the batch (the model's parameters excluded). Every batch, the rest of that first one
included, is then split into ``ceil(rows * bytes_per_row / CHUNK_BYTES)`` near-equal chunks.
Models whose activations are small (the NSL-KDD MLP: 5 KB a row) are never split.

Chunking gives each row the same result as the whole batch for any model that treats rows
independently, which every model in eval mode does (attacks run models in eval mode, and
per-sample early stopping already relies on it). A module in training mode (batch norm mixes
rows there) is never split, nor are GPU tensors: there, larger batches are faster.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

CHUNK_BYTES = 32 * 2**20
"""Target bytes of saved activations per chunk of a forward+backward pass."""
PROBE_ROWS = 16
"""Rows of the first gradient call that measure a model's activations (the rest is chunked)."""

_Key = tuple[tuple[int, ...], torch.dtype]
_bytes_per_row: weakref.WeakKeyDictionary[Any, dict[_Key, float]] = weakref.WeakKeyDictionary()


def bytes_per_row(model: Callable[[Tensor], Tensor], x: Tensor) -> float | None:
    """Saved activation bytes per row of a forward+backward of ``model`` on rows shaped like
    ``x``'s, as measured by the first gradient call; ``None`` before it."""
    try:
        known = _bytes_per_row.get(model)
    except TypeError:  # not weak-referenceable (e.g. a builtin): measured at every call
        return None
    return None if known is None else known.get((tuple(x.shape[1:]), x.dtype))


def chunk_count(model: Callable[[Tensor], Tensor], x: Tensor, factor: float = 1.0) -> int:
    """How many row chunks a forward+backward of ``model`` on ``x`` should be split into:
    0 when not measured yet for this model and row shape, 1 for no split. ``factor`` scales
    the bytes per row (a backward of ``K`` vectors at once keeps ``K`` gradients per
    activation)."""
    if x.device.type != "cpu" or x.shape[0] < 2 or getattr(model, "training", False):
        return 1  # a module in training mode may mix rows (batch norm): never split it
    per_row = bytes_per_row(model, x)
    if per_row is None:
        return 0
    return max(1, min(x.shape[0], math.ceil(x.shape[0] * per_row * factor / CHUNK_BYTES)))


def map_rows(model: Callable[[Tensor], Tensor], fn: Callable[..., tuple[Tensor, ...]],
             x: Tensor, *rows: Tensor | None, factor: float = 1.0) -> tuple[Tensor, ...]:
    """``fn(x, *rows)``, a forward+backward of ``model`` whose outputs are all indexed by row,
    run over row chunks of ``x`` and of every tensor in ``rows`` (``None`` passes through) and
    concatenated: the same result as one call on the whole batch.

    The first call for ``model`` and this row shape runs its first :data:`PROBE_ROWS` rows alone
    to measure the activations per row; ``factor`` as in :func:`chunk_count`.
    """

    def call(s: slice) -> tuple[Tensor, ...]:
        return fn(x[s], *(None if r is None else r[s] for r in rows))

    n = x.shape[0]
    chunks = chunk_count(model, x, factor)
    if chunks == 1:
        return fn(x, *rows)
    pieces, start = [], 0
    if chunks == 0:  # the first call for this model and row shape: measure on the first rows
        start = min(n, PROBE_ROWS)
        with recording(model, x[:start]):
            pieces.append(call(slice(0, start)))
        chunks = max(1, chunk_count(model, x[start:], factor))
    pieces += [call(slice(start + s.start, start + s.stop)) for s in row_slices(n - start, chunks)]
    if len(pieces) == 1:
        return pieces[0]
    return tuple(torch.cat(part) for part in zip(*pieces, strict=True))


@contextmanager
def recording(model: Callable[[Tensor], Tensor], x: Tensor) -> Iterator[None]:
    """Run a forward (with grad) of ``model`` on ``x`` in this context, the first time for this
    model and row shape: it records the saved bytes per row that :func:`chunk_count` then
    uses."""
    rows, total = x.shape[0], [0]
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()} \
        if isinstance(model, torch.nn.Module) else set()

    def pack(t: Tensor) -> Tensor:
        if t.dim() and t.shape[0] == rows and t.untyped_storage().data_ptr() not in weights:
            total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield
    try:
        entry = _bytes_per_row.setdefault(model, {})
    except TypeError:  # not weak-referenceable: measured again at the next call
        return
    entry[(tuple(x.shape[1:]), x.dtype)] = total[0] / rows


def row_slices(rows: int, chunks: int) -> list[slice]:
    """``chunks`` contiguous, near-equal slices covering ``range(rows)``."""
    bounds = [rows * i // chunks for i in range(chunks + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def forward(model: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``model(x)`` in the row chunks that a forward+backward would use (the same outputs; for
    forwards without grad, whose activations are as large)."""
    chunks = chunk_count(model, x)
    if chunks <= 1:
        return model(x)
    return torch.cat([model(x[s]) for s in row_slices(x.shape[0], chunks)])
