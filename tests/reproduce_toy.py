"""A toy reproduction experiment for the runner, CLI and page tests: no torch, instant, counts
its runs (``CALLS``), and fails when ``FAIL`` is set.

Protocol: none (a test double of an ``advlab.reproduce`` module).
"""

from __future__ import annotations

from typing import Any

from advlab.reproduce.outcome import bar_plot, line_plot, mean_std, outcome

PAPER = "Toy, Test 2026"
CLAIM = "the toy figure is 0.5"
DATASETS = ("digits", "nsl-kdd")
CALLS: list[str] = []
FAIL: list[bool] = []


def run(config: Any) -> dict[str, Any]:
    CALLS.append(config.dataset)
    if FAIL:
        raise RuntimeError("toy failure")
    values = [0.5 + 0.01 * s for s in config.seed_list]
    stat = mean_std(values)
    return outcome(figure=f"toy {stat['mean']:.2f}", metrics={"toy": stat},
                   seeds=config.seed_list, headline="toy", ok=True, scaled=config.quick,
                   reason="the toy holds", dataset=config.dataset, protocol="toy",
                   plots=[line_plot("toy curve", "x", "y", {"a": ([0, 1], [stat, stat])}),
                          bar_plot("toy bars", "y", ["p", "q"], {"b": [stat, stat]})])
