"""Evaluation settings from a TOML file (read with the standard library's ``tomllib``) and flags.

A configuration file, every key of which has a flag of the same name (flags win)::

    model = "runs/demo/model"        # a folder from `advlab train` (or model_factory = "pkg:fn")
    dataset = "digits"               # optional when the model's sidecar records it
    dataset_options = { upsample = true }
    split = "test"
    n = 500
    batch_size = 250
    seed = 0
    device = "cpu"
    out = "runs/demo/eval"

    [eps]                            # one grid per norm used by the attacks
    linf = [0.05, 0.1, 0.2]
    l2 = [0.5, 1.0, 2.0]

    [[attack]]
    name = "fgsm"

    [[attack]]
    name = "pgd"                     # every other key is a knob of the attack's signature
    steps = 40

Errors name the file and the key; the CLI turns them into one line and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from advlab.evaluation.runs import build_runs, convert_parameter, normalise_eps_grid

KEYS = {"model", "model_factory", "dataset", "data_path", "dataset_options", "split", "attack",
        "eps", "n", "batch_size", "seed", "device", "out"}
REQUIRED = ("attack", "eps")


class ConfigError(ValueError):
    """A missing, unknown or malformed setting; the message names the file and the key."""


@dataclass
class EvalConfig:
    attacks: list[dict[str, Any]]
    eps: dict[str, list[float]]
    model: str | None = None
    model_factory: str | None = None
    dataset: str | None = None
    data_path: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    split: str = "test"
    n: int | None = 500
    batch_size: int = 250
    seed: int = 0
    device: str = "cpu"
    out: str = "runs/eval"

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "model_factory": self.model_factory,
                "dataset": self.dataset, "data_path": self.data_path,
                "dataset_options": self.dataset_options, "split": self.split,
                "attack": self.attacks, "eps": self.eps, "n": self.n,
                "batch_size": self.batch_size, "seed": self.seed, "device": self.device,
                "out": self.out}


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def parse_attack_flag(text: str) -> dict[str, Any]:
    """``"pgd:norm=l2,steps=40"`` -> ``{"name": "pgd", "norm": "l2", "steps": 40}``.

    Knob values are converted with the types in the attack's signature.
    """
    name, _, rest = text.partition(":")
    entry: dict[str, Any] = {"name": name.strip()}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--attack {text!r}: expected key=value, got {item!r}")
        entry[key.strip()] = value.strip()
    return entry


def parse_eps_flag(text: str) -> tuple[str, list[float]]:
    """``"linf=0.05,0.1"`` -> ``("linf", [0.05, 0.1])``."""
    norm, eq, values = text.partition("=")
    if not eq:
        raise ConfigError(f"--eps {text!r}: expected NORM=EPS[,EPS...], e.g. linf=0.05,0.1")
    out = []
    for v in values.split(","):
        try:
            out.append(float(v))
        except ValueError:
            raise ConfigError(f"--eps {text!r}: {v!r} is not a number") from None
    return norm.strip(), out


def build(file_settings: Mapping[str, Any] | None, flags: Mapping[str, Any],
          source: str = "flags") -> EvalConfig:
    """Merge a config file's settings with flags (flags given on the command line win)."""
    settings = dict(file_settings or {})
    unknown = sorted(set(settings) - KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(KEYS))}")
    for key, value in flags.items():
        if value is not None and value != [] and value != {}:
            settings[key] = value
    for key in REQUIRED:
        if key not in settings:
            hint = {"attack": "the attacks to run: [[attack]] tables, or --attack NAME",
                    "eps": "the eps grid: an [eps] table, or --eps NORM=EPS,..."}[key]
            raise ConfigError(f"{source}: missing key {key!r} ({hint})")
    if "model" not in settings and "model_factory" not in settings:
        raise ConfigError(f"{source}: missing key 'model' (a model folder from `advlab train`; "
                          "or model_factory = 'module:function')")
    attacks = settings["attack"]
    if isinstance(attacks, Mapping) or isinstance(attacks, str):
        attacks = [attacks]
    entries = []
    for i, entry in enumerate(attacks):
        if isinstance(entry, str):
            entry = parse_attack_flag(entry)
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ConfigError(f"{source}: attack #{i + 1} needs a 'name'")
        entry = dict(entry)
        reserved = {"name", "norm", "label", "target", "constraints"}
        try:
            entry.update({k: convert_parameter(entry["name"], k, v)
                          for k, v in entry.items() if k not in reserved})
        except ValueError as err:
            raise ConfigError(f"{source}: attack #{i + 1}: {err}") from None
        entries.append(entry)
    eps = settings["eps"]
    if not isinstance(eps, Mapping):
        raise ConfigError(f"{source}: 'eps' must be a table of norm = [eps, ...]")
    eps = {str(k): list(v) if isinstance(v, Sequence) else [v] for k, v in eps.items()}
    try:
        normalise_eps_grid(eps, build_runs(entries))
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None
    for key, kind in (("n", int), ("batch_size", int), ("seed", int)):
        if key in settings and settings[key] is not None and not isinstance(settings[key], kind):
            raise ConfigError(f"{source}: {key!r} must be an integer, got {settings[key]!r}")
    known = {k: settings[k] for k in ("model", "model_factory", "dataset", "data_path",
                                        "dataset_options", "split", "n", "batch_size", "seed",
                                        "device", "out") if k in settings}
    for key in ("model", "data_path", "out"):
        if known.get(key) is not None:
            known[key] = str(known[key])
    return EvalConfig(attacks=entries, eps=eps, **known)
