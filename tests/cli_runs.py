"""Running `advlab` from tests: in a subprocess (so that SIGKILL is a real kill, and torchrun
can launch its processes), and the small digits model the run-folder tests evaluate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from advlab.cli import main

ADVLAB = [sys.executable, "-m", "advlab"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``advlab ARGS`` in a subprocess (one thread), its output captured."""
    return subprocess.run([*ADVLAB, *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV)


def train_digits_mlp(folder: Path) -> Path:
    """The digits MLP (4 epochs, no validation split), trained in this process into folder."""
    out = folder / "mlp"
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--epochs", "4", "--lr",
                 "3e-3", "--val-fraction", "0", "--quiet", "--out", str(out)]) == 0
    return out
