"""Safe model files: weights in safetensors, everything else in a JSON sidecar.

A model folder holds ``model.safetensors`` and ``advlab.json``. The sidecar records the
architecture and its arguments, the dataset and its preprocessing, the class names and the
metrics, so any advlab command can rebuild the model from the folder alone. Nothing is ever
unpickled: safetensors holds raw tensors only, and a plain ``state_dict`` file (``.pt``) is read
with ``torch.load(weights_only=True)``. Every problem with a model folder raises
:class:`~advlab.errors.ModelFileError`, naming the file (and the line, for the sidecar).
A tree ensemble's folder holds its library's own safe format instead of the weights
(:mod:`advlab.trees.io`), with the same sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from advlab.errors import ModelFileError
from advlab.models.zoo import build

__all__ = ["ModelFileError", "load", "load_state", "read_sidecar", "save"]

WEIGHTS, SIDECAR = "model.safetensors", "advlab.json"
TREE_ARCHITECTURES = ("xgboost", "lightgbm", "random-forest")  # advlab.trees.model.TREE_KINDS
FORMAT_VERSION = 1


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
    """The parsed ``advlab.json`` of a model folder: a JSON object with a string
    ``architecture`` and an object ``arguments``."""
    path = Path(folder) / SIDECAR
    if not path.is_file():
        raise ModelFileError(path, None, f"no sidecar (is {folder} an advlab model folder?)")
    raw = path.read_bytes()
    try:
        sidecar = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ModelFileError(path, line, f"not UTF-8 text (byte {err.start}): is this a JSON "
                             "sidecar?") from None
    except json.JSONDecodeError as err:
        raise ModelFileError(path, err.lineno, f"invalid JSON: {err.msg}") from None
    except RecursionError:
        raise ModelFileError(path, None, "invalid JSON: nested too deeply") from None
    if not isinstance(sidecar, dict):
        raise ModelFileError(path, 1, f"expected a JSON object, found {type(sidecar).__name__}")
    for key, kind in (("architecture", str), ("arguments", dict)):
        if key not in sidecar:
            raise ModelFileError(path, None, f"missing key {key!r}")
        if not isinstance(sidecar[key], kind):
            raise ModelFileError(path, _line_of(raw, key), f"{key!r} must be a JSON "
                                 f"{'string' if kind is str else 'object'}, found "
                                 f"{type(sidecar[key]).__name__}")
    return dict(sidecar)


def _line_of(raw: bytes, key: str) -> int | None:
    """The first line of ``raw`` that holds ``"key"``, for error messages."""
    at = raw.find(json.dumps(key).encode())
    return None if at < 0 else raw[:at].count(b"\n") + 1


_CONVERT = ("advlab never unpickles model files. To convert it, in a Python session you trust: "
            "state = torch.load(open(path, 'rb'), weights_only=True) (a file object: torch "
            "reads a path ending in .safetensors as safetensors), then "
            "safetensors.torch.save_file(state, 'model.safetensors') (or rebuild the model, "
            "load_state_dict(state) and advlab.models.save(model, folder, ...))")


def _sniff(path: Path) -> None:
    """Explain what a ``.safetensors`` file is when it is not one: a pickle (``torch.save``'s
    legacy format, or ``pickle.dump``), a zip archive (``torch.save``), a truncated file or a
    header that is not safetensors' (8-byte little-endian length, then a JSON object)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        raise ModelFileError(path, None, f"this is a pickle (protocol {head[1]}, e.g. "
                             f"torch.save's legacy format), not safetensors; {_CONVERT}")
    if head[:4] == b"PK\x03\x04":
        raise ModelFileError(path, None, "this is a zip archive (torch.save's format, a pickle "
                             f"inside), not safetensors; {_CONVERT}")
    if len(head) < 9:
        raise ModelFileError(path, None, f"not a safetensors file: {size} bytes, too short for "
                             "its 8-byte header length and JSON header")
    length = int.from_bytes(head[:8], "little")
    if head[8:9] != b"{" or length > size - 8:
        what = (f"its header length {length} exceeds the file's {size - 8} remaining bytes "
                "(truncated?)" if head[8:9] == b"{" else "no JSON header after the 8-byte length")
        raise ModelFileError(path, None, f"not a safetensors file: {what}")


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file safely: safetensors, or a ``state_dict`` via ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, None, "weights file not found")
    if path.suffix == ".safetensors":
        _sniff(path)
        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises its own (Rust) error type
            raise ModelFileError(path, None, f"not a valid safetensors weights file ({err})"
                                 ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means: not a safe weights file
        raise ModelFileError(path, None, "not a weights file torch.load(weights_only=True) can "
                             f"read ({type(err).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(path, None, "expected a state_dict of tensors")
    return state


def _build(sidecar: dict[str, Any], path: Path, device: str | torch.device) -> nn.Module:
    try:
        with torch.device(device):
            return build(sidecar["architecture"], **sidecar["arguments"])
    except (ValueError, TypeError, RuntimeError, OverflowError) as err:
        raise ModelFileError(path, _line_of(path.read_bytes(), "arguments"),
                             f"cannot build {sidecar['architecture']!r} from its arguments: "
                             f"{err}") from None


def load(folder: str | Path, *,
         device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from its folder. Returns ``(model in eval mode, sidecar dict)``.

    The architecture is first built without memory (on PyTorch's ``meta`` device) and checked
    against the weights' names and shapes, so a corrupt sidecar cannot allocate a huge model.
    """
    folder = Path(folder)
    sidecar = read_sidecar(folder)
    if sidecar["architecture"] in TREE_ARCHITECTURES:  # a tree ensemble: its library's format
        from advlab.trees.io import load_trees

        return load_trees(folder, sidecar, device=device)
    weights = folder / WEIGHTS
    if not weights.is_file():
        legacy = folder / "model.pt"
        weights = legacy if legacy.is_file() else weights
    shell = _build(sidecar, folder / SIDECAR, "meta")
    state = load_state(weights)
    expected = shell.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise ModelFileError(weights, None, "weights do not match the architecture "
                             f"{sidecar['architecture']!r} (missing {missing[:3]}, unexpected "
                             f"{unexpected[:3]}, wrong shapes {wrong[:3]})")
    model = _build(sidecar, folder / SIDECAR, "cpu")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # e.g. a dtype that cannot be copied into the parameters
        raise ModelFileError(weights, None, f"cannot load the weights: {err}") from None
    return model.to(device).eval(), sidecar


def check_input_shape(recorded: dict[str, Any] | None, input_shape: tuple[int, ...],
                      dataset: str, *, model: str | Path) -> None:
    """Raise ``ValueError`` when data of ``input_shape`` (from the data set ``dataset``) cannot
    go into the model whose sidecar records ``recorded`` (its ``dataset`` entry: the name and
    ``input_shape`` of the data it was trained on). The message says which shape is which, so
    that a mismatch is caught before any work, not as a matrix-multiplication error mid-run."""
    recorded = recorded or {}
    shape = recorded.get("input_shape")
    if shape is None or tuple(shape) == tuple(input_shape):
        return
    trained = recorded.get("name") or "its training data"
    hint = f"; use it on {trained}, or a model trained on {dataset}" \
        if recorded.get("name") and recorded.get("name") != dataset else \
        " (different preprocessing options?)"
    raise ValueError(f"model {model} takes inputs of shape {tuple(shape)} (trained on "
                     f"{trained}), but {dataset} has inputs of shape {tuple(input_shape)}{hint}")
