"""How an evaluation's gradient passes run: eager float32 (the default and the reference), compiled
(``compile=True``) or in lower precision (``precision="bf16"`` / ``"fp16"``).

:func:`apply_passes` hands the evaluation-wide choice to every attack run whose attack takes the
``compile`` / ``precision`` knobs (FGSM, BIM and PGD: :mod:`advlab.accelerate`) and does not set
them itself (a knob given in the run's own entry wins). The runs so changed record the knob in
their ``params``, and the plan records both settings (``config["compile"]``,
``config["precision"]``), so that the summary says how its figures were computed and a resumed
run with other passes is refused (they are part of the fingerprint). Whatever the passes, every
success is decided and scored in float32 (:func:`advlab.scoring.score`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import torch

from advlab.accelerate import PRECISIONS, check_precision, native
from advlab.evaluation.runs import AttackRun, attack_parameters

KNOBS = ("compile", "precision")


class PrecisionWarning(UserWarning):
    """A lower precision that the device only emulates (correct, usually slower than float32)."""


def check_passes(compile: object, precision: object, device: torch.device) -> None:
    """``ValueError`` unless ``compile`` is a bool and ``device`` can run ``precision``; a
    :class:`PrecisionWarning` when it only emulates it (correct, usually slower than float32)."""
    if not isinstance(compile, bool):
        raise ValueError(f"evaluate: compile must be True or False, got {compile!r}")
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"evaluate: precision must be one of {', '.join(PRECISIONS)}, got "
                         f"{precision!r}")
    try:
        check_precision(precision, device)
    except ValueError as err:
        raise ValueError(f"evaluate: {err}") from None
    if not native(precision, device):  # type: ignore[arg-type]
        warnings.warn(f"precision {precision!r} is emulated on this {device.type} (no native "
                      f"{precision} arithmetic): correct, but usually slower than fp32",
                      PrecisionWarning, stacklevel=3)


def apply_passes(runs: Sequence[AttackRun], *, compile: bool, precision: str,
                 device: torch.device) -> list[AttackRun]:
    """The runs with the evaluation's passes set on those whose attack takes them (see the module
    docstring). Checks the settings and every run's own ``precision`` against ``device``."""
    check_passes(compile, precision, device)
    chosen = {"compile": compile, "precision": precision}
    defaults = {"compile": False, "precision": "fp32"}
    out = []
    for run in runs:
        takes = [k for k in KNOBS if k in attack_parameters(run.name)]
        own = run.params.get("precision")
        if own is not None and own != "fp32":
            try:
                check_precision(own, device)
            except ValueError as err:
                raise ValueError(f"attack {run.label or run.name!r}: {err}") from None
        extra = {k: chosen[k] for k in takes if k not in run.params and chosen[k] != defaults[k]}
        out.append(replace(run, params={**run.params, **extra}) if extra else run)
    return out
