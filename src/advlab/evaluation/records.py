"""The batch record of an evaluation, and its check against the plan.

A batch record is one JSON line of a results file: the per-sample records of one batch of the
plan (indices, labels, clean correctness, ``||x||_2``) and, for every attack call of the plan in
order, the per-sample success, validity and perturbation norms with the call's counters. A
resumed run reads its records back from disk, where anything may have happened to them; the
store keeps a line only when :func:`check_record` accepts it, so the aggregation downstream never
meets a malformed record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from advlab.evaluation import cascade
from advlab.evaluation.plan import Plan
from advlab.norms import NORMS

EXAMPLE_KEYS = ("index", "label", "clean_pred", "clean_conf", "adv_pred", "adv_conf", "shape",
                "clean", "adversarial")


class RecordError(ValueError):
    """A batch record that does not match the plan (the message says which field)."""


def check_record(item: Any, plan: Plan, *, num_classes: int, n_features: int | None) -> int:
    """Check that ``item`` is a complete batch record of ``plan``; return its batch number.

    Raises:
        RecordError: naming the first field that is missing or malformed.
    """
    if not isinstance(item, Mapping) or item.get("type") != "batch":
        raise RecordError("not a batch record")
    b = item.get("batch")
    if type(b) is not int or not 0 <= b < len(plan.batches):
        raise RecordError(f"batch {b!r} is not a batch of this run (0 to "
                          f"{len(plan.batches) - 1})")
    if item.get("index") != plan.batches[b].tolist():
        raise RecordError(f"batch {b}: its sample indices are not those of the plan")
    m = len(item["index"])
    _ints(item, "y", m, 0, num_classes)
    _bools(item, "clean_correct", m)
    _numbers(item, "x_l2", m)
    if "seconds" in item:
        _seconds(item.get("seconds"), f"batch {b}: seconds")
    runs = item.get("runs")
    if not isinstance(runs, list) or len(runs) != len(plan.calls):
        raise RecordError(f"batch {b}: expected {len(plan.calls)} attack runs")
    for entry, call in zip(runs, plan.calls, strict=True):
        eps = None if math.isinf(call.eps) else call.eps
        if not isinstance(entry, Mapping) or entry.get("label") != call.run.label or \
                entry.get("eps") != eps:
            raise RecordError(f"batch {b}: expected the run {call.run.label!r} at eps {eps}")
        where = f"batch {b}, {call.run.label} at eps {eps}"
        _bools(entry, "success", m, where)
        _bools(entry, "valid", m, where)
        for p in NORMS:
            _numbers(entry, p, m, where)
        for key in ("gradients", "forwards"):
            if type(entry.get(key)) is not int or entry[key] < 0:
                raise RecordError(f"{where}: {key} must be a count")
        _seconds(entry.get("seconds"), f"{where}: seconds")
        if n_features is not None and ("feature_abs_delta" in entry or
                                       "feature_changed" in entry):
            _numbers(entry, "feature_abs_delta", n_features, where)
            _numbers(entry, "feature_changed", n_features, where)
        if "examples" in entry:
            _examples(entry["examples"], where)
        if cascade.is_cascade(call.run) and (problem := cascade.check_entry(entry, m)):
            raise RecordError(f"{where}: {problem}")
    return b


def _fail(where: str, key: str, what: str) -> RecordError:
    return RecordError(f"{where + ': ' if where else ''}{key} must be {what}")


def _list(item: Mapping[str, Any], key: str, m: int, where: str, what: str) -> Sequence[Any]:
    value = item.get(key)
    if not isinstance(value, list) or len(value) != m:
        raise _fail(where, key, f"a list of {m} {what}")
    return value


def _bools(item: Mapping[str, Any], key: str, m: int, where: str = "") -> None:
    if not all(type(v) is bool for v in _list(item, key, m, where, "booleans")):
        raise _fail(where, key, f"a list of {m} booleans")


def _ints(item: Mapping[str, Any], key: str, m: int, low: int, high: int) -> None:
    if not all(type(v) is int and low <= v < high for v in _list(item, key, m, "", "labels")):
        raise _fail("", key, f"a list of {m} class indices in [{low}, {high})")


def _numbers(item: Mapping[str, Any], key: str, m: int, where: str = "") -> None:
    values = _list(item, key, m, where, "numbers")
    if not all(type(v) in (int, float) and math.isfinite(v) for v in values):
        raise _fail(where, key, f"a list of {m} finite numbers")


def _seconds(value: Any, where: str) -> None:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise RecordError(f"{where} must be a number >= 0")


def _examples(examples: Any, where: str) -> None:
    if not isinstance(examples, list):
        raise _fail(where, "examples", "a list")
    for ex in examples:
        if not isinstance(ex, Mapping) or any(k not in ex for k in EXAMPLE_KEYS):
            raise _fail(where, "examples", f"objects with {', '.join(EXAMPLE_KEYS)}")
        for key in ("clean", "adversarial"):
            _numbers(ex, key, len(ex[key]) if isinstance(ex[key], list) else -1, where)
        for key in ("index", "label", "clean_pred", "adv_pred"):
            if type(ex[key]) is not int:
                raise _fail(where, f"examples' {key}", "an integer")
        for key in ("clean_conf", "adv_conf"):
            if type(ex[key]) not in (int, float) or not math.isfinite(ex[key]):
                raise _fail(where, f"examples' {key}", "a number")
        if not isinstance(ex["shape"], list) or not all(type(s) is int for s in ex["shape"]):
            raise _fail(where, "examples' shape", "a list of integers")
