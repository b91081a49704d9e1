"""A self-contained HTML page for the outputs of `advlab explain` and `advlab robust-features`.

Like :mod:`advlab.report.html`, the page is rendered from the JSON the command wrote and from the
SVG figures of :mod:`advlab.report.explain_plots`; it never touches a model. It has no scripts
and no external resources.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

_STYLE = ("body{font-family:'DejaVu Sans',sans-serif;max-width:1100px;margin:2em auto;"
          "color:#111827}table{border-collapse:collapse;font-size:13px;margin:1em 0}"
          "td,th{border:1px solid #e5e7eb;padding:3px 8px;text-align:right}"
          "td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}"
          "figcaption{color:#4b5563;font-size:13px}svg{max-width:100%;height:auto}")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "–" if value is None else str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; every cell is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_page(title: str, settings: Mapping[str, Any], figures: Mapping[str, str | None],
                tables: Sequence[tuple[str, str]] = ()) -> str:
    """The page: ``title``, a settings table, each ``(caption, table_html)`` of ``tables`` and
    each figure (SVG text) with its name as the caption."""
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
             f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             table(["setting", "value"], [[k, v] for k, v in settings.items()])]
    for caption, block in tables:
        parts.append(f"<h2>{html.escape(caption)}</h2>{block}")
    for name, svg in figures.items():
        if svg is not None:
            parts.append(f"<figure>{svg}<figcaption>{html.escape(name)}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
