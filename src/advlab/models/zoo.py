"""A small model zoo: an MLP for tabular data and a LeNet-like CNN for images.

Every builder takes plain JSON-serialisable arguments, so a model folder's sidecar can record
``{"architecture": name, "arguments": {...}}`` and :func:`build` can rebuild the network.
Models return logits; normalisation, when needed, goes inside the model (see
:class:`advlab.models.wrappers.Normalize`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn


def mlp(in_features: int, classes: int, hidden: Sequence[int] = (256, 256),
        dropout: float = 0.0) -> nn.Sequential:
    """Multi-layer perceptron with ReLU activations for flat ``(N, in_features)`` inputs.

    Inputs of any shape ``(N, *D)`` are flattened first, so ``prod(D)`` must equal
    ``in_features``.
    """
    if in_features < 1 or classes < 2:
        raise ValueError(f"mlp: need in_features >= 1 and classes >= 2, got {in_features}, "
                         f"{classes}")
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def small_cnn(in_shape: Sequence[int], classes: int, channels: Sequence[int] = (32, 64),
              hidden: int = 128) -> nn.Sequential:
    """LeNet-like CNN: two blocks of 3×3 conv + ReLU + 2×2 max-pool, then a hidden dense layer.

    Works for any ``in_shape = (C, H, W)`` with ``H, W >= 4`` (8×8 digits, 28×28 MNIST, 32×32).
    """
    if len(in_shape) != 3:
        raise ValueError(f"small_cnn: in_shape must be (C, H, W), got {tuple(in_shape)}")
    c, h, w = (int(v) for v in in_shape)
    if h < 4 or w < 4:
        raise ValueError(f"small_cnn: images must be at least 4×4, got {h}×{w}")
    c1, c2 = (int(v) for v in channels)
    features = nn.Sequential(
        nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    )
    flat = c2 * (h // 4) * (w // 4)
    return nn.Sequential(features, nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"mlp": mlp, "small_cnn": small_cnn}


def build(architecture: str, **arguments: Any) -> nn.Module:
    """Build a zoo model by name (``"mlp"``, ``"small_cnn"``) from JSON-style arguments."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[architecture](**arguments)
    except TypeError as err:
        raise ValueError(f"bad arguments for {architecture!r}: {err}") from None
