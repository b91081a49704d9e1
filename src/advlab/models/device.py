"""The one device rule of advlab: :func:`resolve_device` turns ``"auto"``, ``"cpu"``, ``"cuda"``
or ``"cuda:N"`` into a :class:`torch.device`, or says plainly why it cannot.

Every command's ``--device`` and every library entry point's ``device=`` go through it, so that
``"auto"`` means the same everywhere (the GPU when there is one) and a request for a GPU that is
not there fails before any work, naming what was asked and what exists. Under ``torchrun``
(``LOCAL_RANK`` set) ``"auto"`` and ``"cuda"`` mean this process's own GPU, ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import os
import re

import torch

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
_CUDA = re.compile(r"cuda(?::(\d+))?")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The :class:`torch.device` that ``device`` names (``None`` means ``"auto"``).

    Raises:
        ValueError: an unknown name, or CUDA (or GPU N) asked for where it is absent.
    """
    if device is None:
        device = "auto"
    text = str(device).strip().lower()
    if text == "auto":
        return _local_cuda() if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = _CUDA.fullmatch(text)
    if match is None:
        raise ValueError(f"device {str(device)!r}: expected one of {', '.join(DEVICES)}")
    if not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r}: CUDA is not available here (torch "
                         f"{torch.__version__}); use --device cpu or auto")
    if match.group(1) is None:
        return _local_cuda()
    index, count = int(match.group(1)), torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA device(s), "
                         f"cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)


def _local_cuda() -> torch.device:
    """This process's GPU: ``cuda:LOCAL_RANK`` under torchrun, else ``cuda:0``."""
    index = int(os.environ.get("LOCAL_RANK", "0")) % max(torch.cuda.device_count(), 1)
    return torch.device("cuda", index)
