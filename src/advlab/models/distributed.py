"""torch.distributed, as advlab uses it: the process group that ``torchrun`` describes, this
process's rank, and the few collectives the evaluation runner and the training loop need.

advlab has no cluster code of its own. ``torchrun`` (``python -m torch.distributed.run``) starts
the processes and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous;
:func:`process_group` joins it (gloo on the CPU, NCCL on GPUs). Outside ``torchrun`` every helper
is a no-op for a single process of rank 0, so the same code runs on one process unchanged.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

TIMEOUT = timedelta(hours=6)
"""How long a collective waits for the slowest rank (a shard's last batch, say)."""


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def launched() -> bool:
    """True in a process that ``torchrun`` started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


@contextmanager
def process_group(device: torch.device) -> Iterator[torch.device]:
    """Join the process group ``torchrun`` set up, for the duration of the block, and yield
    this process's device (``cuda:LOCAL_RANK`` for a GPU run). Outside ``torchrun``, or when a
    group is already initialised (the caller's own), it yields ``device`` and does nothing."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    try:
        yield device
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast(value: Any, src: int = 0) -> Any:
    """``value`` of rank ``src`` on every rank (any picklable object made by advlab itself)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_sum(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every rank's ``values`` summed key by key (one collective for the whole dict)."""
    if not active() or not values:
        return values
    keys = sorted(values)
    flat = torch.stack([values[k].detach().double().reshape(()) for k in keys])
    dist.all_reduce(flat)
    return {k: flat[i] for i, k in enumerate(keys)}


def data_parallel(model: torch.nn.Module, step: Callable[..., Any],
                  device: torch.device) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel for the training forward of ``step``, which
    must take it as a third argument (``step(batch, t, net)``)."""
    from torch.nn.parallel import DistributedDataParallel

    try:
        inspect.signature(step).bind(None, 0, None)
    except TypeError:
        raise ValueError("a distributed training needs a step(batch, t, net) that runs its "
                         "training forward through net (DistributedDataParallel); this trainer's "
                         "step takes (batch, t) only: run it on one process") from None
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None)
