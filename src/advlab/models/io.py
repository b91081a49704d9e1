"""Safe model files: weights in safetensors, everything else in a JSON sidecar.

A model folder holds ``model.safetensors`` and ``advlab.json``. The sidecar records the
architecture and its arguments, the dataset and its preprocessing, the class names and the
metrics, so any advlab command can rebuild the model from the folder alone. Nothing is ever
unpickled: safetensors holds raw tensors only, and a plain ``state_dict`` file (``.pt``) is read
with ``torch.load(weights_only=True)``. A tree ensemble's folder holds its library's own safe
format instead of the weights (:mod:`advlab.trees.io`), with the same sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from advlab.models.zoo import build

WEIGHTS, SIDECAR = "model.safetensors", "advlab.json"
TREE_ARCHITECTURES = ("xgboost", "lightgbm", "random-forest")  # advlab.trees.model.TREE_KINDS
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model folder is missing, incomplete or inconsistent. The message names the file."""


def save(model: nn.Module, folder: str | Path, *, architecture: str, arguments: dict[str, Any],
         **metadata: Any) -> Path:
    """Write ``model``'s weights and sidecar into ``folder`` (created if needed).

    ``metadata`` holds JSON-serialisable extras: ``dataset``, ``class_names``, ``metrics``,
    ``seed``, ``training``... It must not repeat ``architecture`` or ``arguments``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS))
    return write_sidecar(folder, architecture=architecture, arguments=arguments, **metadata)


def write_sidecar(folder: Path, *, architecture: str, arguments: dict[str, Any],
                  **metadata: Any) -> Path:
    """Write ``folder/advlab.json`` (the model files are the caller's); returns ``folder``."""
    from advlab import __version__

    sidecar = {"format": FORMAT_VERSION, "advlab_version": __version__,
               "torch_version": torch.__version__, "architecture": architecture,
               "arguments": arguments, **metadata}
    try:
        text = json.dumps(sidecar, indent=2, sort_keys=True)
    except TypeError as err:
        raise ValueError(f"save: metadata must be JSON-serialisable: {err}") from None
    (folder / SIDECAR).write_text(text + "\n")
    return folder


def read_sidecar(folder: str | Path) -> dict[str, Any]:
    """The parsed ``advlab.json`` of a model folder."""
    path = Path(folder) / SIDECAR
    if not path.is_file():
        raise ModelFileError(f"{path}: no sidecar (is {folder} an advlab model folder?)")
    try:
        sidecar = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None
    for key in ("architecture", "arguments"):
        if key not in sidecar:
            raise ModelFileError(f"{path}: missing key {key!r}")
    return dict(sidecar)


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file safely: safetensors, or a ``state_dict`` via ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises its own (Rust) error type
            raise ModelFileError(f"{path}: not a safetensors weights file ({err})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means: not a safe weights file
        raise ModelFileError(f"{path}: not a weights file torch.load(weights_only=True) can "
                             f"read ({type(err).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: expected a state_dict of tensors")
    return state


def load(folder: str | Path, *,
         device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from its folder. Returns ``(model in eval mode, sidecar dict)``."""
    folder = Path(folder)
    sidecar = read_sidecar(folder)
    if sidecar["architecture"] in TREE_ARCHITECTURES:  # a tree ensemble: its library's format
        from advlab.trees.io import load_trees

        return load_trees(folder, sidecar, device=device)
    weights = folder / WEIGHTS
    if not weights.is_file():
        legacy = folder / "model.pt"
        weights = legacy if legacy.is_file() else weights
    try:
        model = build(sidecar["architecture"], **sidecar["arguments"])
    except ValueError as err:
        raise ModelFileError(f"{folder / SIDECAR}: {err}") from None
    state = load_state(weights)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise ModelFileError(f"{weights}: weights do not match the architecture "
                             f"{sidecar['architecture']!r} (missing {missing[:3]}, unexpected "
                             f"{unexpected[:3]}, wrong shapes {wrong[:3]})")
    model.load_state_dict(state)
    return model.to(device).eval(), sidecar
