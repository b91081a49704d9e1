"""The report's AutoAttack breakdown: for every AutoAttack row of the summary, the cascade of
its stages (:mod:`advlab.evaluation.cascade`): the samples each stage attacked (those every
earlier stage left robust), how many it removed, and the robust accuracy after it. It only
formats the summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from advlab.report.plots import norm_label


def _pct(x: object) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) and not isinstance(x, bool) else "–"


def cascade_table(results: Sequence[Any]) -> str:
    """The breakdown as an HTML table (``""`` when no row has a cascade)."""
    body = []
    for row in results:
        if not isinstance(row, Mapping) or not isinstance(row.get("cascade"), list):
            continue
        eps = row.get("eps")
        where = f"{escape(norm_label(row.get('norm')))} ε = " + (
            escape(f"{eps:g}") if isinstance(eps, (int, float)) else "–")
        for i, stage in enumerate(row["cascade"]):
            if not isinstance(stage, Mapping):
                continue
            first = f"<strong>{escape(str(row.get('attack')))}</strong> {where}" if i == 0 \
                else ""
            body.append(f"<tr><td>{first}</td><td>{escape(str(stage.get('stage')))}</td>"
                        f"<td class=num>{escape(str(stage.get('attacked')))}</td>"
                        f"<td class=num>{escape(str(stage.get('removed')))}</td>"
                        f"<td class=num>{_pct(stage.get('robust_after'))}</td></tr>")
    if not body:
        return ""
    return ('<h3 id="cascade">AutoAttack cascade</h3><p class="small">Each stage runs only on '
            "the samples every earlier stage left robust; a sample counts as broken by the "
            "first stage that fools the model inside the threat model.</p>"
            '<div class="scroll"><table id="cascade-table"><thead><tr><th>Run</th>'
            "<th>Stage</th><th class=num>Attacked</th><th class=num>Removed</th>"
            "<th class=num>Robust after</th></tr></thead><tbody>" + "".join(body)
            + "</tbody></table></div>")
