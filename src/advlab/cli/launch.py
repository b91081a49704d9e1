"""``--workers N``: the same command on N processes of this machine, launched by torchrun.

``advlab evaluate --workers 2 ...`` runs ``python -m torch.distributed.run --standalone
--nproc-per-node 2 -m advlab -- evaluate ...`` (torchrun itself, with its rendezvous on a free
local port; the ``--`` keeps torchrun's parser from reading advlab's options, ``--n`` being a
prefix of its ``--nnodes``), so that a sharded run started by hand with ``torchrun`` and one
started with ``--workers`` are the same thing. Each process gets ``cores / N`` intra-op threads
(unless ``OMP_NUM_THREADS`` is set), so that N processes share the machine instead of fighting
over it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from advlab.cli.common import UsageError, log


def check_workers(workers: int, device: Any) -> None:
    """``--workers`` must be >= 1, and no more than the GPUs of this machine for a GPU run."""
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    if device.type == "cuda":
        import torch

        if workers > torch.cuda.device_count():
            raise UsageError(f"--workers {workers}: this machine has "
                             f"{torch.cuda.device_count()} GPU(s), one per process is needed")


def without_workers(argv: Sequence[str]) -> list[str]:
    """``argv`` without its ``--workers N`` (or ``--workers=N``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def torchrun(argv: Sequence[str], workers: int) -> int:
    """Run ``advlab <argv>`` (minus ``--workers``) on ``workers`` local processes under
    torchrun; return its exit code."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={workers}", "--max-restarts=0", "-m", "advlab", "--",
               *without_workers(argv)]
    log(f"launching {workers} processes: torchrun --standalone --nproc-per-node={workers} "
        f"-m advlab -- {' '.join(without_workers(argv))}")
    return subprocess.run(command, env=env, check=False).returncode
