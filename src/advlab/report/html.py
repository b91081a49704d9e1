"""The report page: one self-contained HTML file rendered from summary.json.

Nothing here computes results; every number comes from the summary, and a missing or null value
shows as "–". Every string from the summary is escaped. The page has no scripts and no external
resources: CSS is inline and figures are inline SVG.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from html import escape
from typing import Any, TypeGuard

from advlab.report.cascade import cascade_table
from advlab.report.page import CSS, figure, kv, section
from advlab.report.plots import MAX_HISTOGRAMS, norm_label

DASH = "–"
SCHEMA = "advlab.evaluation/1"


def _finite(x: object) -> TypeGuard[int | float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: object) -> str:
    """A rate in [0, 1] as ``97.3 %``; null or NaN as "–"."""
    return f"{100 * x:.1f} %" if _finite(x) else DASH


def num(x: object) -> str:
    """An integer with thousands separators, a float with 3 significant digits, null as "–"."""
    if not _finite(x):
        return "∞" if x == math.inf else "−∞" if x == -math.inf else DASH
    return f"{x:,}" if isinstance(x, int) else f"{x:.3g}"


def eps_text(x: object) -> str:
    return f"{x:g}" if _finite(x) else num(x)


def seconds(x: object) -> str:
    if not _finite(x):
        return DASH
    return f"{1000 * x:.0f} ms" if x < 1 else f"{x:,.1f} s"


def date(x: object) -> str:
    """An ISO timestamp as ``2026-11-25 06:10 UTC``; anything else escaped as is."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::[\d.]+)?(Z|[+-]\d\d:?\d\d)?", str(x))
    if not m:
        return text(x)
    zone = {"Z": " UTC", None: ""}.get(m.group(3), f" {m.group(3)}")
    return escape(f"{m.group(1)} {m.group(2)}{zone}")


def text(x: object) -> str:
    """Any JSON value as escaped text; containers as compact JSON."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (dict, list)):
        return f"<code>{escape(json.dumps(x, ensure_ascii=False, default=str))}</code>"
    return escape(str(x))


def _mapping(x: object) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _list(x: object) -> list[Any]:
    return [v for v in x if isinstance(v, Mapping)] if isinstance(x, list) else []


def render_page(summary: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    """The whole page; ``figures`` are the inline SVGs from ``plots.figures``."""
    s = _mapping(summary)
    card = _mapping(s.get("dataset_card"))
    tabular = card.get("kind") == "tabular" or (card.get("kind") is None and bool(s.get("tabular")))
    sections = [
        _headline(s),
        section("curves", "Security-evaluation curves", figure(figures.get("curves"),
                 "No curves recorded."), "Robust accuracy against the perturbation budget ε, one "
                 "panel per norm. The bold black line is the per-sample worst case over all "
                 "attacks of that norm: a sample counts as robust only if every attack failed."),
        _checks(s), _histograms(s, figures),
        _tabular(s, figures) if tabular else section(
            "gallery", "Adversarial examples", figure(figures.get("gallery"), "No examples "
            "recorded."), "Original, adversarial and amplified perturbation (red: increased, "
            "blue: decreased). Titles give the true label, the predictions and confidences."),
        *([section("transfer", "Transferability", figure(figures["transfer"], ""),
                    "Transfer success of the attack crafted on each source model (rows) against "
                    "each target model (columns), among the samples the target classifies "
                    "correctly.")] if "transfer" in figures else []),
        _cards_section(s), _config(s), _versions(s)]
    model = _mapping(s.get("model_card")).get("architecture")
    title = f"advlab report – {card.get('name') or DASH} – {model or DASH}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        "<main>", _header(s, tabular), *_banners(s), _summary_cards(s), *sections,
        '<footer>Rendered by advlab.report from summary.json; nothing on this page was '
        "recomputed.</footer>", "</main>", "</body>", "</html>", ""])


def _header(s: Mapping[str, Any], tabular: bool) -> str:
    config, card = _mapping(s.get("config")), _mapping(s.get("dataset_card"))
    model = _mapping(s.get("model_card"))
    dataset = card.get("name") or config.get("dataset")
    split = card.get("split") or config.get("split")
    meta = [f"created {date(s.get('created'))}", f"n = {num(card.get('n', config.get('n')))}",
            f"seed {text(config.get('seed'))}", f"device {text(config.get('device'))}"]
    links = [("headline", "Results"), ("curves", "Curves"), ("checks", "Sanity checks"),
             ("histograms", "Norms"), ("tabular", "Features") if tabular else ("gallery",
             "Gallery"), ("model-card", "Model & data"), ("config", "Configuration"),
             ("versions", "Versions")]
    nav = "".join(f'<a href="#{sid}">{name}</a>' for sid, name in links)
    return (f'<header class="top"><h1>Security evaluation report</h1>'
            f'<div class="sub">Dataset <strong>{text(dataset)}</strong> ({text(split)}) · model '
            f'<strong>{text(model.get("architecture"))}</strong></div>'
            f'<div class="meta">{" · ".join(meta)}</div><nav class="toc">{nav}</nav></header>')


def _failed(s: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in _list(s.get("checks")) if c.get("passed") is False]


def _banners(s: Mapping[str, Any]) -> list[str]:
    out = []
    if s.get("schema") not in (None, SCHEMA):
        out.append(f'<div class="banner warn">Unknown schema {text(s.get("schema"))}; expected '
                   f"{SCHEMA}. Rendered on a best-effort basis.</div>")
    if s.get("complete") is False:
        out.append('<div class="banner warn">This run is incomplete: the numbers cover only the '
                   "batches finished so far.</div>")
    failed = _failed(s)
    if failed:
        names = ", ".join(text(c.get("name")) for c in failed)
        out.append(f'<div class="banner bad">✗ {len(failed)} sanity check'
                   f'{"s" if len(failed) > 1 else ""} failed ({names}). Read '
                   '<a href="#checks">the checks</a> before trusting these numbers.</div>')
    return out


def _strongest_worst_cases(s: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """For each norm, the worst-case row at the largest eps."""
    rows = _list(s.get("worst_case"))
    rows = sorted(rows, key=lambda r: r["eps"] if _finite(r.get("eps")) else -math.inf)
    return list({str(r.get("norm")): r for r in rows}.values())


def _summary_cards(s: Mapping[str, Any]) -> str:
    cards = [('card-clean', "", "Clean accuracy", pct(s.get("clean_accuracy")),
              f"{num(_mapping(s.get('dataset_card')).get('n'))} samples")]
    for row in _strongest_worst_cases(s):
        norm = row.get("norm")
        label = f"Worst case {escape(norm_label(norm))}"
        cards.append((f"card-worst-{escape(str(norm))}", "", label, pct(row.get("robust_accuracy")),
                      f"robust accuracy at ε = {eps_text(row.get('eps'))}"))
    checks, failed = _list(s.get("checks")), _failed(s)
    cards.append(("card-checks", "bad" if failed else "good" if checks else "",
                  "Sanity checks", f"{len(checks) - len(failed)} / {len(checks)}",
                  f"{len(failed)} failed" if failed else "passed" if checks else "none recorded"))
    return '<div class="cards">' + "".join(
        f'<div class="card {cls}" id="{cid}"><div class="label">{label}</div>'
        f'<div class="value">{value}</div><div class="note">{note}</div></div>'
        for cid, cls, label, value, note in cards) + "</div>"


def _attack_cell(r: Mapping[str, Any]) -> str:
    label, name = r.get("attack"), r.get("name")
    cell = f"<strong>{text(label)}</strong>"
    if name is not None and name != label:
        cell += f' <span class="muted">({text(name)})</span>'
    if r.get("derived"):
        return cell + '<span class="tag" title="from the minimal-norm run">derived</span>'
    return cell + ('<span class="tag">min-norm</span>' if r.get("minimal_norm") else "")


def _tr(cells: list[str], cls: str = "") -> str:
    """A table row: the first cell as text, the others as right-aligned numbers."""
    first, *rest = cells
    return (f'<tr class="{cls}"><td>{first}</td>' if cls else f"<tr><td>{first}</td>") + "".join(
        f"<td class=num>{c}</td>" for c in rest) + "</tr>"


def _headline(s: Mapping[str, Any]) -> str:
    results, worst = _list(s.get("results")), _list(s.get("worst_case"))
    head = ("<thead><tr><th>Attack</th><th class=num>ε</th><th class=num>Robust accuracy</th>"
            "<th class=num>Success rate</th><th class=num>Median ‖δ‖</th><th class=num>Valid</th>"
            "<th class=num>Gradients</th><th class=num>Forwards</th><th class=num>Time</th>"
            "</tr></thead>")
    rows = [_tr(['<strong>Clean</strong> <span class="muted">(no attack)</span>', "0",
                 pct(s.get("clean_accuracy")), *[DASH] * 6], "clean")]
    for norm in dict.fromkeys([str(r.get("norm")) for r in results + worst]):
        rows.append(f'<tr class="group"><th colspan="9">{escape(norm_label(norm))} threat model'
                    "</th></tr>")
        rows += [_tr([_attack_cell(r), eps_text(r.get("eps")), pct(r.get("robust_accuracy")),
                      pct(r.get("success_rate")), num(r.get(f"median_{norm}")),
                      pct(r.get("valid_rate")), num(r.get("gradients")), num(r.get("forwards")),
                      seconds(r.get("seconds"))]) for r in results if str(r.get("norm")) == norm]
        rows += [_tr([f'Worst case<div class="small muted">over '
                      f'{", ".join(text(a) for a in w.get("attacks") or []) or DASH}</div>',
                      eps_text(w.get("eps")), pct(w.get("robust_accuracy")), *[DASH] * 6], "worst")
                 for w in worst if str(w.get("norm")) == norm]
    table = f'<div class="scroll"><table id="headline-table">{head}<tbody>{"".join(rows)}' \
            "</tbody></table></div>"
    return section("headline", "Robust accuracy",
                   table + cascade_table(results) + _coverage(s)
                   + _per_class(s, results, worst),
                    "Success rate is measured among clean-correct samples; Median ‖δ‖ is in the "
                    "attack's own norm; Valid is the share of adversarial points inside the "
                    "Domain. Worst case: per sample, over all attacks of that norm at that ε.")


def _coverage(s: Mapping[str, Any]) -> str:
    """Which attack ran at which norm of the eps grid, and why the skipped pairs were skipped."""
    rows = _list(_mapping(s.get("config")).get("coverage"))
    if not rows:
        return ""
    body = "".join(
        f'<tr class="{"ran" if r.get("runs") else "skipped"}"><td>{text(r.get("attack"))}</td>'
        f'<td>{escape(norm_label(r.get("norm")))}</td><td>'
        + (", ".join(text(x) for x in r["runs"]) if r.get("runs") else
           f'<span class="muted">skipped: {text(r.get("reason"))}</span>') + "</td></tr>"
        for r in rows)
    skipped = [f"{text(r.get('attack'))} × {escape(norm_label(r.get('norm')))}" for r in rows
               if not r.get("runs")]
    return (f'<p class="small" id="coverage-note">Attack × norm: {len(rows) - len(skipped)} of '
            f"{len(rows)} pairs of the eps grid ran"
            + (f"; skipped: {', '.join(skipped)} (reasons below)." if skipped else ".") + "</p>"
            '<details><summary>Attack × norm coverage</summary><div class="scroll">'
            '<table id="coverage-table"><thead><tr><th>Attack</th><th>Norm</th><th>Runs</th>'
            f"</tr></thead><tbody>{body}</tbody></table></div></details>")


def _per_class(s: Mapping[str, Any], results: list[Any], worst: list[Any]) -> str:
    rows = [("Clean", s.get("per_class_clean_accuracy"), ' class="clean"')]
    rows += [(f"{text(r.get('attack'))} {escape(norm_label(r.get('norm')))} ε="
             f"{eps_text(r.get('eps'))}", r.get("per_class_robust_accuracy"), "")
            for r in results]
    rows += [(f"Worst case {escape(norm_label(w.get('norm')))} ε={eps_text(w.get('eps'))}",
              w.get("per_class_robust_accuracy"), ' class="worst"') for w in worst]
    table = [(name, vals, cls) for name, vals, cls in rows if isinstance(vals, list)]
    if not table:
        return ""
    names = _mapping(s.get("dataset_card")).get("class_names")
    width = max(len(vals) for _, vals, _ in table)
    classes = [names[i] if isinstance(names, list) and i < len(names) else i for i in range(width)]
    head = "<tr><th>Row</th>" + "".join(f"<th class=num>{text(c)}</th>" for c in classes) + "</tr>"
    body = "".join(f"<tr{cls}><td>{name}</td>" + "".join(
        f"<td class=num>{pct(vals[i] if i < len(vals) else None)}</td>" for i in range(width))
        + "</tr>" for name, vals, cls in table)
    return ("<details><summary>Per-class robust accuracy</summary><div class=\"scroll\">"
            f'<table id="per-class-table"><thead>{head}</thead><tbody>{body}</tbody></table>'
            "</div></details>")


def _checks(s: Mapping[str, Any]) -> str:
    checks = _list(s.get("checks"))
    order = sorted(range(len(checks)), key=lambda i: (
        checks[i].get("passed") is not False, checks[i].get("severity") != "error", i))
    items = []
    for c in (checks[i] for i in order):
        passed = c.get("passed") is not False
        severity = str(c.get("severity") or "error")
        status = "pass" if passed else "fail"
        items.append(
            f'<li class="check {status}" data-check="{escape(str(c.get("name")))}">'
            f'<span class="mark" aria-label="{"passed" if passed else "failed"}">'
            f'{"✓" if passed else "✗"}</span><div><span class="name">{text(c.get("name"))}</span>'
            f'<span class="tag {"" if passed else escape(severity)}">{escape(severity)}</span>'
            f'<div class="evidence">{text(c.get("evidence"))}</div>'
            f'<div class="meaning">{text(c.get("meaning"))}</div></div></li>')
    body = f'<ul class="checks">{"".join(items)}</ul>' if items else \
        '<p class="empty">No sanity checks recorded.</p>'
    return section("checks", "Sanity checks", body, "Checks for gradient masking and model "
                    "sanity, after AutoAttack. Failed checks come first.")


def _histograms(s: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    hists = _mapping(s.get("histograms"))
    note = f" Showing the first {MAX_HISTOGRAMS} of {len(hists)}." \
        if len(hists) > MAX_HISTOGRAMS else ""
    return section("histograms", "Perturbation norms",
                    figure(figures.get("histograms"), "No perturbation norms recorded."),
                    "Per-sample norms of the successful adversarial perturbations for each attack "
                    f"row (dashed line: median).{note}")


def _tabular(s: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    rows = []
    for key, entry in _mapping(s.get("tabular")).items():
        entry = _mapping(entry)
        feats = _list(entry.get("top_features"))[:5]
        listed = "<br>".join(
            f'<code>{text(f.get("name"))}</code> <span class="muted">mean |Δ| '
            f'{num(f.get("mean_abs_delta"))} · changed in {pct(f.get("changed_rate"))}</span>'
            for f in feats) or DASH
        found = f'<div class="small muted">{num(entry["successes"])} successes</div>' \
            if "successes" in entry else ""
        rows.append(f"<tr><td><strong>{text(key)}</strong>{found}</td>"
                    f"<td class=num>{pct(entry.get('valid_rate'))}</td><td>{listed}</td></tr>")
    table = ('<div class="scroll"><table id="tabular-table"><thead><tr><th>Attack row</th>'
             "<th class=num>Valid in domain</th><th>Most perturbed features</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table></div>") if rows else \
        '<p class="empty">No feature statistics recorded.</p>'
    domain = _mapping(s.get("dataset_card")).get("domain")
    return section("tabular", "Perturbed features and domain validity",
                    figure(figures.get("features"), "") + table,
                    f"Domain: {text(domain)}. Valid is the share of adversarial points that "
                    "remain inside the Domain.")


def _value(key: str, value: object) -> str:
    if key == "parameters":
        return num(value)
    if isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value):
        more = f" … ({len(value)} in all)" if len(value) > 12 else ""
        sep = " × " if key == "input_shape" else ", "
        return escape(sep.join(map(str, value[:12]))) + more or DASH
    return text(value)


def _card_rows(card: Mapping[str, Any], known: dict[str, str]) -> list[tuple[str, str]]:
    keys = [*known, *(k for k in card if k not in known)]
    return [(known.get(k, k.replace("_", " ")), _value(k, card.get(k))) for k in keys]


def _cards_section(s: Mapping[str, Any]) -> str:
    model = _card_rows(_mapping(s.get("model_card")), {
        "architecture": "architecture", "parameters": "parameters", "source": "source",
        "defense": "defense", "training": "training"})
    data = _card_rows(_mapping(s.get("dataset_card")), {
        "name": "name", "split": "split", "n": "samples", "kind": "kind",
        "input_shape": "input shape", "num_classes": "classes", "class_names": "class names",
        "feature_names": "features", "domain": "domain"})
    body = (f'<div class="grid2"><div id="model"><h3>Model</h3>{kv(model)}</div>'
            f'<div id="dataset-card"><h3>Dataset</h3>{kv(data)}</div></div>')
    return section("model-card", "Model and dataset", body)


def _config(s: Mapping[str, Any]) -> str:
    config = s.get("config")
    attacks = ", ".join(text(a.get("label")) for a in _list(_mapping(config).get("attacks")))
    dump = DASH if config is None else escape(json.dumps(config, indent=2, ensure_ascii=False,
                                                         default=str))
    return section("config", "Run configuration",
                    f"<p>Attacks: {attacks or DASH}.</p><details><summary>Show the run "
                    f"configuration (JSON)</summary><pre>{dump}</pre></details>",
                    "Exactly what the run was asked to do: enough to reproduce it.")


def _versions(s: Mapping[str, Any]) -> str:
    rows = [(str(k), text(v)) for k, v in _mapping(s.get("versions")).items()]
    rows += [("schema", text(s.get("schema"))), ("complete", text(s.get("complete"))),
             ("total time", seconds(_mapping(s.get("timing")).get("seconds")))]
    return section("versions", "Versions", kv(rows))

