"""Weights files that are not safetensors, named ``model.safetensors``: each error says what the
file is, that advlab never unpickles, and how to convert it."""

from __future__ import annotations

import pickle
import re

import pytest
import torch

from advlab.errors import AdvlabError, ModelFileError
from advlab.models import io, mlp


@pytest.fixture
def folder(tmp_path):
    model = mlp(4, 2, hidden=(3,))
    io.save(model, tmp_path / "m", architecture="mlp",
            arguments={"in_features": 4, "classes": 2, "hidden": [3]})
    return tmp_path / "m", model.state_dict()


@pytest.mark.parametrize("writer", ["torch.save", "legacy torch.save", "pickle"])
def test_a_pickle_renamed_safetensors_is_recognised(folder, writer) -> None:
    path, state = folder
    weights = path / io.WEIGHTS
    if writer == "torch.save":
        torch.save(state, weights)
        what = "zip archive"
    elif writer == "legacy torch.save":
        torch.save(state, weights, _use_new_zipfile_serialization=False)
        what = "pickle (protocol 2"
    else:
        weights.write_bytes(pickle.dumps({k: v.tolist() for k, v in state.items()}, protocol=4))
        what = "pickle (protocol 4"
    with pytest.raises(ModelFileError) as err:
        io.load(path)
    message = str(err.value)
    assert message.startswith(f"{weights}: this is a {what}")
    assert "never unpickles" in message and "weights_only=True" in message
    assert "safetensors.torch.save_file" in message and "advlab.models.save" in message
    assert "header too large" not in message
    assert err.value.path == str(weights) and err.value.line is None


def test_the_conversion_the_message_gives_works(folder) -> None:
    path, state = folder
    torch.save(state, path / io.WEIGHTS)
    from safetensors.torch import save_file

    with open(path / io.WEIGHTS, "rb") as fh:  # a path ending in .safetensors: torch would
        converted = torch.load(fh, weights_only=True)  # read it as safetensors
    save_file(converted, str(path / io.WEIGHTS))
    model, _ = io.load(path)
    torch.testing.assert_close(model.state_dict(), state)


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "0 bytes, too short"),
    ((10**6).to_bytes(8, "little") + b'{"a": 1}', "header length 1000000 exceeds"),
    (b"\x05\x00\x00\x00\x00\x00\x00\x00hello", "no JSON header"),
])
def test_truncated_or_foreign_files_are_named(folder, content, problem) -> None:
    path, _ = folder
    (path / io.WEIGHTS).write_bytes(content)
    with pytest.raises(ModelFileError, match=re.escape(problem)):
        io.load(path)


def test_sidecar_errors_are_advlab_errors_with_a_line(folder) -> None:
    path, _ = folder
    sidecar = path / io.SIDECAR
    sidecar.write_text('{\n  "architecture": "mlp",\n  "arguments": [4, 2]\n}\n')
    with pytest.raises(ModelFileError, match=re.escape(f"{sidecar}:3: 'arguments' must be")):
        io.load(path)
    sidecar.write_bytes(b'{"architecture": "mlp",\n "x": "\xff"}')
    with pytest.raises(ModelFileError, match=re.escape(f"{sidecar}:2: not UTF-8")):
        io.load(path)
    sidecar.write_text('{"architecture": "mlp", "arguments": {"in_features": 4, "clases": 2}}')
    with pytest.raises(AdvlabError, match="cannot build 'mlp'"):
        io.load(path)


def test_a_huge_architecture_in_the_sidecar_allocates_nothing(folder) -> None:
    """The architecture is checked against the weights on the meta device first."""
    path, _ = folder
    (path / io.SIDECAR).write_text('{"architecture": "mlp", "arguments": '
                                   '{"in_features": 4, "classes": 2, "hidden": [1000000000]}}')
    with pytest.raises(ModelFileError, match="do not match the architecture"):
        io.load(path)
