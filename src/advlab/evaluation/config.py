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
    compile = false                  # torch.compile the attacks' gradient passes (opt-in)
    precision = "fp32"               # or "bf16" / "fp16" for them; scoring stays float32

    [eps]                            # one grid per norm used by the attacks
    linf = [0.05, 0.1, 0.2]
    l2 = [0.5, 1.0, 2.0]

    [[attack]]
    name = "fgsm"

    [[attack]]
    name = "pgd"                     # every other key is a knob of the attack's signature
    steps = 40

``suite = "autoattack"`` (flag ``--suite``) adds AutoAttack (standard) at every norm of the eps
grid it supports (:mod:`advlab.evaluation.cascade`; also ``autoattack-plus``,
``autoattack-rand``); with a suite, ``[[attack]]`` tables are optional.

Errors name the file and the key; the CLI turns them into one line and exit code 2.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from advlab.accelerate import PRECISIONS
from advlab.errors import AdvlabError
from advlab.evaluation.cascade import SUITES, suite_entries
from advlab.evaluation.runs import (
    build_runs,
    convert_parameter,
    expand_norms,
    make_run,
    normalise_eps_grid,
)

KEYS = {"model", "model_factory", "dataset", "data_path", "dataset_options", "split", "attack",
        "eps", "n", "batch_size", "seed", "device", "out", "suite", "compile", "precision"}
REQUIRED = ("attack", "eps")


class ConfigError(AdvlabError):
    """A missing, unknown or malformed setting; the message names the file (and the line, where
    one is known) or the flag, and the key. ``path`` and ``line`` hold them (or ``None``)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None
                 ) -> None:
        super().__init__(message)
        self.path, self.line = path, line


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
    compile: bool = False
    precision: str = "fp32"

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "model_factory": self.model_factory,
                "dataset": self.dataset, "data_path": self.data_path,
                "dataset_options": self.dataset_options, "split": self.split,
                "attack": self.attacks, "eps": self.eps, "n": self.n,
                "batch_size": self.batch_size, "seed": self.seed, "device": self.device,
                "out": self.out, "compile": self.compile, "precision": self.precision}


def read_toml(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML file; :class:`ConfigError` names the file, and the line and column
    of a syntax error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found", path=str(path))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {err.start}); a TOML file is "
                          "UTF-8", path=str(path), line=line) from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}", path=str(path)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        found = re.search(r"\(at line (\d+), column (\d+)\)$", message)
        line = getattr(err, "lineno", None) or (int(found.group(1)) if found else None)
        column = getattr(err, "colno", None) or (int(found.group(2)) if found else None)
        message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)$", "", message)
        where = f"{path}:{line}:{column}" if line is not None else str(path)
        raise ConfigError(f"{where}: invalid TOML: {message}", path=str(path), line=line) \
            from None


def parse_attack_flag(text: str) -> dict[str, Any]:
    """``"pgd:norm=l2,steps=40"`` -> ``{"name": "pgd", "norm": "l2", "steps": 40}``.

    Knob values are converted with the types in the attack's signature and checked against
    their valid ranges; :class:`ConfigError` names the flag.
    """
    name, _, rest = text.partition(":")
    entry: dict[str, Any] = {"name": name.strip()}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--attack {text!r}: expected key=value, got {item!r}")
        entry[key.strip()] = value.strip()
    try:
        entry.update({k: convert_parameter(entry["name"], k, v)
                      for k, v in entry.items() if k not in RESERVED_KEYS})
        make_run(entry)
    except ValueError as err:
        raise ConfigError(f"--attack {text!r}: {err}") from None
    return entry


def parse_eps_flag(text: str) -> tuple[str, list[float]]:
    """``"linf=0.05,0.1"`` -> ``("linf", [0.05, 0.1])``; each eps positive and finite."""
    norm, eq, values = text.partition("=")
    if not eq:
        raise ConfigError(f"--eps {text!r}: expected NORM=EPS[,EPS...], e.g. linf=0.05,0.1")
    out = []
    for v in values.split(","):
        try:
            out.append(float(v))
        except ValueError:
            raise ConfigError(f"--eps {text!r}: {v!r} is not a number") from None
        if not math.isfinite(out[-1]) or out[-1] <= 0:
            raise ConfigError(f"--eps {text!r}: eps must be positive and finite, got {v}")
    return norm.strip(), out


class _Where:
    """Names a setting in messages: the flag when it came from the command line, else the file
    and the line of its key (found in the file's text; TOML parsers do not keep it)."""

    def __init__(self, source: str, from_flags: set[str]) -> None:
        self.source, self.from_flags = source, from_flags
        path = Path(source)
        self.lines = path.read_text(encoding="utf-8", errors="replace").splitlines() \
            if source != "flags" and path.is_file() else []

    def line(self, key: str, nth: int = 0) -> int | None:
        pattern = re.compile(r"\s*\[\[\s*attack\s*\]\]" if key == "attack"
                             else rf"\s*(\[\s*{re.escape(key)}\s*\]|{re.escape(key)}\s*=)")
        hits = [i + 1 for i, text in enumerate(self.lines) if pattern.match(text)]
        return hits[nth] if nth < len(hits) else None

    def name(self, key: str) -> str:
        """``--batch-size`` when the setting came from a flag, else ``batch_size``."""
        return f"--{key.replace('_', '-')}" if key in self.from_flags else key

    def __call__(self, key: str, message: str, nth: int = 0) -> ConfigError:
        if key in self.from_flags:
            flag = self.name(key)
            return ConfigError(message if message.startswith(flag) else f"{flag}: {message}")
        line = self.line(key, nth)
        where = self.source if line is None else f"{self.source}:{line}"
        return ConfigError(f"{where}: {message}", path=None if self.source == "flags" else
                           self.source, line=line)


def build(file_settings: Mapping[str, Any] | None, flags: Mapping[str, Any],
          source: str = "flags") -> EvalConfig:
    """Merge a config file's settings with flags (flags given on the command line win), and
    check the whole configuration: nothing has been loaded or written when this raises.

    Attacks given without a norm run at every norm of the eps grid they support
    (:func:`~advlab.evaluation.runs.expand_norms`).
    """
    settings = dict(file_settings or {})
    given = {k for k, v in flags.items() if v is not None and v != [] and v != {}}
    where = _Where(source, given)
    unknown = sorted(set(settings) - KEYS)
    if unknown:
        raise where(unknown[0], f"unknown key(s) {', '.join(unknown)}; known: "
                    f"{', '.join(sorted(KEYS))}")
    settings.update({k: flags[k] for k in given})
    suite = settings.get("suite")
    if suite is not None:
        if not isinstance(suite, str) or suite not in SUITES:
            raise where("suite", f"{where.name('suite')} must be one of {', '.join(SUITES)}, "
                        f"got {suite!r}")
        settings.setdefault("attack", [])
    for key in REQUIRED:
        if key not in settings:
            hint = {"attack": "the attacks to run: [[attack]] tables, --attack NAME, or a "
                              "suite: --suite autoattack",
                    "eps": "the eps grid: an [eps] table, or --eps NORM=EPS,..."}[key]
            raise ConfigError(f"{source}: missing key {key!r} ({hint})")
    if "model" not in settings and "model_factory" not in settings:
        raise ConfigError(f"{source}: missing key 'model' (a model folder from `advlab train`; "
                          "or model_factory = 'module:function')")
    _check_scalars(settings, where)
    eps = settings["eps"]
    if not isinstance(eps, Mapping):
        raise where("eps", "'eps' must be a table of norm = [eps, ...]")
    eps = {str(k): list(v) if isinstance(v, (list, tuple)) else [v] for k, v in eps.items()}
    entries = _attack_entries(settings["attack"], where, allow_none=suite is not None)
    try:
        entries = [dict(e) for e in expand_norms(entries, eps)]  # type: ignore[arg-type]
        if suite is not None:
            entries += suite_entries(suite, list(eps))
        normalise_eps_grid(eps, build_runs(entries))
    except ValueError as err:
        raise where("eps", str(err)) from None
    known = {k: settings[k] for k in ("model", "model_factory", "dataset", "data_path",
                                        "dataset_options", "split", "n", "batch_size", "seed",
                                        "device", "out", "compile", "precision")
             if k in settings}
    for key in ("model", "data_path", "out"):
        if known.get(key) is not None:
            known[key] = str(known[key])
    return EvalConfig(attacks=entries, eps=eps, **known)


RESERVED_KEYS = {"name", "norm", "label", "target", "constraints"}


def _check_scalars(settings: Mapping[str, Any], where: _Where) -> None:
    """Types and ranges of the settings that are not attacks or eps."""
    for key, low in (("n", 1), ("batch_size", 1), ("seed", 0)):
        value = settings.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise where(key, f"{where.name(key)} must be an integer, got {value!r}")
        if value < low:
            raise where(key, f"{where.name(key)} must be >= {low}, got {value}")
    for key in ("model", "model_factory", "dataset", "data_path", "device", "out"):
        value = settings.get(key)
        if value is not None and not isinstance(value, (str, Path)):
            raise where(key, f"{where.name(key)} must be a string, got {value!r}")
    if not isinstance(settings.get("compile", False), bool):
        raise where("compile", f"{where.name('compile')} must be true or false, got "
                    f"{settings['compile']!r}")
    if settings.get("precision", "fp32") not in PRECISIONS:
        raise where("precision", f"{where.name('precision')} must be one of "
                    f"{', '.join(PRECISIONS)}, got {settings['precision']!r}")
    if settings.get("split", "test") not in ("test", "train"):
        raise where("split", f"{where.name('split')} must be 'test' or 'train', got "
                    f"{settings['split']!r}")
    if not isinstance(settings.get("dataset_options", {}), Mapping):
        raise where("dataset_options", "dataset_options must be a table, e.g. "
                    "{ upsample = true }")


def _attack_entries(attacks: Any, where: _Where, *, allow_none: bool = False
                    ) -> list[dict[str, Any]]:
    """The ``[[attack]]`` entries, converted and checked one by one."""
    if isinstance(attacks, (Mapping, str)):
        attacks = [attacks]
    if not isinstance(attacks, (list, tuple)):
        raise where("attack", f"'attack' must be [[attack]] tables, got {attacks!r}")
    entries = []
    for i, entry in enumerate(attacks):
        if isinstance(entry, str):
            try:
                entry = parse_attack_flag(entry)
            except ConfigError as err:
                if "attack" in where.from_flags:
                    raise
                raise where("attack", f"attack #{i + 1} {str(err).removeprefix('--attack ')}",
                            i) from None
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise where("attack", f"attack #{i + 1} needs a 'name' (a string)", i)
        entry = dict(entry)
        try:
            entry.update({k: convert_parameter(entry["name"], k, v)
                          for k, v in entry.items() if k not in RESERVED_KEYS})
            make_run(entry)
        except ValueError as err:
            raise where("attack", f"attack #{i + 1}: {err}", i) from None
        entries.append(entry)
    if not entries and not allow_none:
        raise where("attack", "no attack to run: give at least one (or a suite)")
    return entries
