"""Training checkpoints: written after every epoch, read back to resume, never a pickle.

A checkpoint folder holds one sub-folder per saved epoch, ``epoch-0003/``, with

* ``model.safetensors``: the weights at the end of the epoch;
* ``best.safetensors``: the weights of the best epoch so far (when the loop selects one);
* ``generators.safetensors``: the states of the loop's random generators (uint8 tensors);
* ``optimizer.pt``: the optimiser's and scheduler's state dicts, written with ``torch.save`` and
  read back with ``torch.load(weights_only=True)`` (tensors and plain containers only);
* ``state.json``, written last: the epoch, the history so far, the early-stopping counters and
  the fingerprint of the training configuration.

A folder without ``state.json`` was cut off while it was written and is ignored; once an epoch
is complete the older ones are removed, so a kill at any moment leaves a readable checkpoint.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from advlab.models import distributed

_EPOCH = re.compile(r"epoch-(\d+)")
STATE = "state.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file."""


def save_checkpoint(folder: str | Path, epoch: int, *, model: nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any,
                    generators: Mapping[str, torch.Generator], state: Mapping[str, Any],
                    best: Mapping[str, torch.Tensor] | None) -> Path:
    """Write the checkpoint of ``epoch`` (0-based) into ``folder``; return its sub-folder."""
    root = Path(folder)
    target = root / f"epoch-{epoch:04d}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    save_file(_cpu(model.state_dict()), str(target / "model.safetensors"))
    if best is not None:
        save_file(_cpu(best), str(target / "best.safetensors"))
    save_file({k: g.get_state() for k, g in generators.items()},
              str(target / "generators.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict()},
               target / "optimizer.pt")
    text = json.dumps({"epoch": epoch, **state}, indent=2, allow_nan=False)
    (target / (STATE + ".tmp")).write_text(text + "\n")
    os.replace(target / (STATE + ".tmp"), target / STATE)
    for old in _epochs(root):
        if old != target:
            shutil.rmtree(old)
    return target


def load_checkpoint(folder: str | Path, *, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, generators: Mapping[str, torch.Generator],
                    fingerprint: str) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Restore the newest complete checkpoint in ``folder`` into ``model``, ``optimizer``,
    ``scheduler`` and ``generators``; return ``(state, best weights or None)``.

    Raises:
        FileNotFoundError: there is no complete checkpoint in ``folder``.
        CheckpointError: it was written by another training configuration, or is damaged.
    """
    done = [p for p in _epochs(Path(folder)) if (p / STATE).is_file()]
    if not done:
        raise FileNotFoundError(f"no complete checkpoint in {folder}")
    path = done[-1]
    try:
        state = json.loads((path / STATE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path / STATE}: not a checkpoint state ({err})") from None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        raise CheckpointError(f"{path / STATE}: written by another training configuration "
                              "(data, model or settings changed); use another --out or remove "
                              f"{folder}")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.load_state_dict({k: v.to(device) for k, v in
                               load_file(str(path / "model.safetensors")).items()})
        for key, value in load_file(str(path / "generators.safetensors")).items():
            if key in generators:
                generators[key].set_state(value)
        opt = torch.load(path / "optimizer.pt", map_location=device, weights_only=True)
        optimizer.load_state_dict(opt["optimizer"])
        if scheduler is not None and opt.get("scheduler") is not None:
            scheduler.load_state_dict(opt["scheduler"])
        best_file = path / "best.safetensors"
        best = load_file(str(best_file)) if best_file.is_file() else None
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(err).__name__}: {err})") \
            from None
    return state, None if best is None else {k: v.to(device) for k, v in best.items()}


def start_from(folder: str | Path | None, *, resume: bool, model: nn.Module,
               optimizer: torch.optim.Optimizer, scheduler: Any,
               generators: Mapping[str, torch.Generator], fingerprint: str,
               history: Any) -> tuple[int, float | None, int, dict[str, torch.Tensor] | None]:
    """Where a training loop starts: ``(first epoch, best monitored value, epochs waited, best
    weights)``. With ``resume`` and a complete checkpoint in ``folder``, everything (``history``
    included) is restored from it; otherwise an old checkpoint there is removed (by rank 0)."""
    if folder is None:
        return 0, None, 0, None
    if not resume or not has_checkpoint(folder):
        if distributed.rank() == 0:
            shutil.rmtree(folder, ignore_errors=True)
        return 0, None, 0, None
    state, best = load_checkpoint(folder, model=model, optimizer=optimizer, scheduler=scheduler,
                                  generators=generators, fingerprint=fingerprint)
    for key, value in state["history"].items():
        setattr(history, key, value)
    return state["epoch"] + 1, state["best"], state["waited"], best


def has_checkpoint(folder: str | Path) -> bool:
    """True when ``folder`` holds a complete checkpoint to resume from."""
    return any((p / STATE).is_file() for p in _epochs(Path(folder)))


def fingerprint(kind: str, model: nn.Module, x: torch.Tensor, **settings: object) -> str:
    """Identifies a training configuration in its checkpoints: the trainer, the model's
    parameter shapes, the data's shape and a checksum of it, and the settings."""
    shapes = [list(p.shape) for p in model.parameters()]
    text = json.dumps([kind, shapes, list(x.shape), float(x.double().sum()),
                       {k: _describe(v) for k, v in sorted(settings.items())}])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _describe(value: object) -> str:
    """A text that is the same in every process (a configured attack by name and knobs)."""
    if isinstance(value, functools.partial):
        knobs = sorted((k, _describe(v)) for k, v in value.keywords.items())
        return f"{_describe(value.func)}({knobs})"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return repr(value)


def _epochs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if _EPOCH.fullmatch(p.name) and p.is_dir()),
                  key=lambda p: int(p.name.split("-")[1]))


def _cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}
