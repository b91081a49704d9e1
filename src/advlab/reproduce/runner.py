"""Run a selection of experiments with a per-experiment cache: ``DIR/<name>.json`` holds the
result and the fingerprint of the configuration it was computed with (experiment, its source,
quick, seeds, data set and its path, advlab's version); a rerun with the same fingerprint reuses
it, so an interrupted ``advlab reproduce`` resumes with the experiment it was running.
Experiments whose data was not given are recorded as skipped (and rerun once it is); failures
are recorded with their error and rerun next time."""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from advlab import __version__
from advlab.reproduce import EXPERIMENTS, experiment
from advlab.reproduce.config import PATH_OPTIONS, Config

SCHEMA = "advlab.reproduce/1"


def command(name: str, config: Config, dataset: str) -> str:
    """The command line that reruns experiment ``name`` alone."""
    parts = ["advlab reproduce", name]
    if config.quick:
        parts.append("--quick")
    if config.seeds is not None:
        parts.append(f"--seeds {config.seeds}")
    if config.seed:
        parts.append(f"--seed {config.seed}")
    if config.dataset == dataset:
        parts.append(f"--dataset {dataset}")
    if dataset in PATH_OPTIONS:
        parts.append(f"{PATH_OPTIONS[dataset]} {config.path(dataset) or 'PATH'}")
    return " ".join(parts + ["--out DIR"])


def fingerprint(name: str, config: Config, dataset: str) -> str:
    """What decides an experiment's result; the cache is reused only when it matches."""
    module = experiment(name)
    source = hashlib.sha256(inspect.getsource(module).encode()).hexdigest()[:16]
    path = config.path(dataset)
    key = {"name": name, "source": source, "quick": config.quick, "seeds": config.seed_list,
           "dataset": dataset, "path": None if path is None else str(path.resolve()),
           "advlab": __version__}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def _header(name: str, config: Config, dataset: str) -> dict[str, Any]:
    module = experiment(name)
    doc = inspect.getdoc(module) or ""
    title = " ".join(doc.split("\n\n")[0].split()).rstrip(".")
    return {"schema": SCHEMA, "name": name, "title": title,
            "paper": module.PAPER, "claim": module.CLAIM, "protocol_doc": doc,
            "dataset": dataset, "command": command(name, config, dataset),
            "fingerprint": fingerprint(name, config, dataset)}


def run_one(name: str, config: Config) -> dict[str, Any]:
    """Run experiment ``name``: its result with ``status`` ``done``, ``skipped`` (its data was
    not given) or ``failed`` (the error), ``seconds`` and the header (paper, claim, command)."""
    module = experiment(name)
    dataset, missing = config.resolve(tuple(module.DATASETS))
    record = _header(name, config, dataset)
    if missing is not None:
        return {**record, "status": "skipped", "reason": f"skipped: needs {missing}",
                "seconds": 0.0}
    start = time.perf_counter()
    try:
        result = module.run(_with_dataset(config, dataset))
    except Exception as err:  # noqa: BLE001 - one experiment's failure must not stop the rest
        return {**record, "status": "failed", "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(limit=6),
                "seconds": round(time.perf_counter() - start, 1)}
    return {**record, **result, "status": "done",
            "seconds": round(time.perf_counter() - start, 1)}


def _with_dataset(config: Config, dataset: str) -> Config:
    from dataclasses import replace

    return replace(config, dataset=dataset)


def cached(out_dir: Path, name: str, config: Config) -> dict[str, Any] | None:
    """The cached result of ``name`` when its fingerprint matches and it did not fail."""
    file = out_dir / f"{name}.json"
    if not file.is_file():
        return None
    try:
        record = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    module = experiment(name)
    dataset, _ = config.resolve(tuple(module.DATASETS))
    if record.get("fingerprint") != fingerprint(name, config, dataset) or \
            record.get("status") not in ("done", "skipped"):
        return None
    if record["status"] == "skipped" and config.resolve(tuple(module.DATASETS))[1] is None:
        return None  # the data is there now
    return record


def run_experiments(names: Sequence[str], config: Config, out_dir: Path | str, *,
                    progress: bool = True,
                    log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run ``names`` (cached ones are reused), writing ``out_dir/<name>.json`` after each; the
    results in the order of :data:`~advlab.reproduce.EXPERIMENTS`."""
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {', '.join(unknown)}; see "
                         "`advlab reproduce --list`")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    order = [n for n in EXPERIMENTS if n in set(names)]
    from tqdm.auto import tqdm

    results = []
    bar = tqdm(order, desc="reproduce", unit="exp", disable=not progress, leave=True)
    for name in bar:
        bar.set_postfix_str(name)
        record = cached(out, name, config)
        if record is not None:  # the description is refreshed, the figures are the cache's
            module = experiment(name)
            record.update(_header(name, config, config.resolve(tuple(module.DATASETS))[0]),
                          cached=True)
            if log is not None:
                log(f"{name}: cached ({record['status']})")
        else:
            record = run_one(name, config)
            (out / f"{name}.json").write_text(json.dumps(record, indent=1, default=_json) + "\n")
            if log is not None:
                log(f"{name}: {record['status']} in {record['seconds']:.0f} s"
                    + (f": {record.get('verdict', '')}" if record["status"] == "done" else
                       f": {record.get('reason') or record.get('error')}"))
        results.append(record)
    return results


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
