"""advlab.report: one self-contained HTML page rendered from summary.json."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from advlab.report import render_html, write_report
from summaries import example_summary

ORDER = ["headline", "curves", "checks", "histograms", "gallery", "model-card", "config",
         "versions"]
EVIL = '<script>alert("x")</script> $a$ "q" onload="boom()" &amp;'
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "source"}


class _Texts(HTMLParser):
    """The text content of every element that has an id (and of every <tr>, in order)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str | None]] = []
        self.texts: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        if tag in VOID:
            return
        found = dict(attrs)
        eid = found.get("id")
        if eid is not None:
            self.texts.setdefault(eid, "")
            self.classes[eid] = found.get("class") or ""
        self.stack.append((tag, eid))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID:
            assert self.stack and self.stack[-1][0] == tag, f"unbalanced </{tag}>"
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        for _, eid in self.stack:
            if eid is not None:
                self.texts[eid] += data


def parse(html: str) -> _Texts:
    parser = _Texts()
    parser.feed(html)
    parser.close()
    assert not parser.stack, f"unclosed elements: {parser.stack}"
    return parser


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """The cells of each body row of a table, as plain text."""
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert table, f"no table {table_id}"
    body = table.group(1).split("<tbody>", 1)[1]
    return [[" ".join(re.sub(r"<[^>]+>", " ", c).split())
             for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return {kind: render_html(example_summary(kind)) for kind in ("image", "tabular")}


@pytest.mark.parametrize("kind", ["image", "tabular"])
def test_example_renders_every_section_in_order(pages, kind) -> None:
    html = pages[kind]
    assert html.startswith("<!DOCTYPE html>")
    ids = parse(html).texts
    order = [s if s != "gallery" or kind == "image" else "tabular" for s in ORDER]
    for sid in order:
        assert sid in ids, f"section {sid!r} missing"
    assert ("tabular" in ids) == (kind == "tabular") and ("gallery" in ids) == (kind == "image")
    positions = [html.index(f'<section id="{sid}">') for sid in order]
    assert positions == sorted(positions)
    figures = ["curves", "histograms", "gallery" if kind == "image" else "features"]
    for name in figures:
        assert html.count(f'<svg class="figure-{name}"') == 1
    assert "Rendered on a best-effort basis" not in html and "incomplete" not in html


def test_headline_table_and_cards(pages) -> None:
    summary = example_summary("image")
    html = pages["image"]
    texts = parse(html).texts
    assert "98.4 %" in texts["card-clean"]
    assert "0.2 %" in texts["card-worst-linf"] and "ε = 0.2" in texts["card-worst-linf"]
    assert "5 / 5" in texts["card-checks"]
    rows = table_rows(html, "headline-table")
    norms = {r["norm"] for r in summary["results"]}
    assert len(rows) == 1 + len(norms) + len(summary["results"]) + len(summary["worst_case"])
    assert rows[0][:3] == ["Clean (no attack)", "0", "98.4 %"]
    pgd = next(r for r in rows if r[0] == "pgd" and r[1] == "0.1")
    assert pgd[2:4] == ["26.2 %", "73.4 %"]                   # robust accuracy, success rate
    worst = [r for r in rows if r[0].startswith("Worst case")]
    assert [w[2] for w in worst] == [f"{100 * w['robust_accuracy']:.1f} %"
                                     for w in summary["worst_case"]]
    deepfool = next(r for r in rows if r[0].startswith("deepfool"))
    assert "min-norm" in deepfool[0] and deepfool[1] == "–"   # minimal-norm row: eps is null


def test_failed_checks_are_first_and_prominent(pages) -> None:
    html = pages["tabular"]
    parsed = parse(html)
    assert "card-checks" in parsed.classes and "bad" in parsed.classes["card-checks"]
    assert "3 / 5" in parsed.texts["card-checks"]
    marks = re.findall(r'<li class="check (pass|fail)"', html)
    assert marks == ["fail", "fail", "pass", "pass", "pass"]
    first = re.search(r'<li class="check fail" data-check="([^"]+)"', html)
    assert first and first.group(1) == "nonzero_gradients"      # errors before warnings
    assert "✗" in html and "✓" in html and "possible gradient masking" in html.lower()
    assert 'class="banner bad"' in html and 'class="banner bad"' not in pages["image"]


def test_tabular_section(pages) -> None:
    summary = example_summary("tabular")
    rows = table_rows(pages["tabular"], "tabular-table")
    assert [r[0] for r in rows] == list(summary["tabular"])
    assert rows[0][1] == "94.0 %" and "src_bytes" in rows[0][2]


def _evil_summary() -> dict:
    s = example_summary("tabular")
    s["dataset_card"]["name"] = EVIL
    s["dataset_card"]["class_names"] = [EVIL, "attack"]
    s["dataset_card"]["feature_names"][0] = EVIL
    s["dataset_card"]["domain"] = EVIL
    s["model_card"]["architecture"] = EVIL
    s["model_card"]["training"] = {EVIL: EVIL}
    s["config"]["model"] = EVIL
    s["config"]["attacks"][0]["label"] = EVIL
    s["created"] = EVIL
    s["versions"][EVIL] = EVIL
    s["results"][0]["attack"] = EVIL
    s["results"][0]["name"] = EVIL
    s["worst_case"][0]["attacks"] = [EVIL]
    s["curves"]["linf"]["series"][EVIL] = s["curves"]["linf"]["series"].pop("fgsm")
    s["checks"][0].update(name=EVIL, evidence=EVIL, meaning=EVIL, severity=EVIL)
    s["histograms"][EVIL] = s["histograms"].pop("fgsm@linf=0.01")
    s["tabular"][EVIL] = s["tabular"].pop("fgsm@linf=0.01")
    s["tabular"][EVIL]["top_features"][0]["name"] = EVIL
    return s


def test_every_string_is_escaped() -> None:
    html = render_html(_evil_summary())
    assert "<script" not in html.lower() and "&lt;script&gt;" in html
    parsed = parse(html)                                     # still well nested
    assert "script" not in parsed.tags and "onload" not in parsed.attributes
    image = example_summary("image")
    image["gallery"][0]["attack"] = EVIL
    image["dataset_card"]["class_names"][3] = EVIL
    html = render_html(image)
    assert "<script" not in html.lower() and "&lt;script&gt;" in html


ATTR = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


@pytest.mark.parametrize("kind", ["image", "tabular"])
def test_no_external_resources(pages, kind) -> None:
    html = pages[kind]
    lowered = html.lower()
    for forbidden in ("<script", "<link", "<iframe", "<object", "<embed", "@import",
                      "@font-face"):
        assert forbidden not in lowered
    for name, dq, sq in ATTR.findall(html):
        value = dq or sq
        if name.lower().endswith(("src", "href", "action", "poster", "srcset")):
            assert value.startswith(("#", "data:")), f"{name}={value[:60]!r} points outside"
        if "://" in value:
            assert name.startswith("xmlns"), f"{name}={value[:60]!r} references a URL"
    for target in re.findall(r"url\(\s*([^)]*)\)", html):
        assert target.strip("'\"").startswith(("#", "data:")), target


def test_nulls_render_as_dash() -> None:
    s = example_summary("image")
    s["clean_accuracy"] = None
    s["results"][0].update(robust_accuracy=None, success_rate=None, median_linf=None,
                           gradients=None, seconds=None)
    s["worst_case"][0]["robust_accuracy"] = None
    s["curves"]["linf"]["series"]["pgd"][2] = None
    s["histograms"]["pgd@linf=0.05"]["values"] = [None, None]
    s["gallery"][0]["adv_conf"] = None
    s["timing"] = None
    html = render_html(s)
    texts = parse(html).texts
    assert "–" in texts["card-clean"] and "%" not in texts["card-clean"]
    rows = table_rows(html, "headline-table")
    assert rows[0][2] == "–"
    first = next(r for r in rows if r[0] == "fgsm")
    assert first[2:5] == ["–", "–", "–"] and first[6] == "–" and first[8] == "–"
    assert next(r for r in rows if r[0].startswith("Worst case"))[2] == "–"
    defense = re.search(r"<th>defense</th><td>(.*?)</td>", html)
    assert defense and defense.group(1) == "–"
    assert "None" not in re.sub(r"<pre>.*?</pre>", "", html, flags=re.S)
    assert "nan" not in re.findall(r">([^<]*)<", html)


@pytest.mark.parametrize("summary", [
    {},
    {"schema": "advlab.evaluation/1", "clean_accuracy": 0.5},
    {"schema": "something/9", "results": None, "checks": "oops", "curves": {"linf": None},
     "histograms": {"a": {"values": "x"}}, "gallery": [{"shape": [1, 2, 2], "clean": [0.1]}],
     "dataset_card": None, "config": {"attacks": None}, "complete": False},
    {"curves": {"l2": {"eps": [0, 1], "series": {}}}, "tabular": {"a": {"top_features": []}},
     "dataset_card": {"kind": "tabular"}, "worst_case": [{"norm": "l2", "eps": None}]},
], ids=["empty", "minimal", "malformed", "sparse"])
def test_partial_summaries_render(summary) -> None:
    html = render_html(summary)
    ids = parse(html).texts
    for sid in ["headline", "curves", "checks", "histograms", "model-card", "config"]:
        assert sid in ids
    assert ("gallery" in ids) != ("tabular" in ids)
    if summary.get("clean_accuracy") == 0.5:
        assert "50.0 %" in ids["card-clean"]
    if summary.get("complete") is False:
        assert "incomplete" in html and "best-effort" in html


def test_percentages_use_one_decimal_and_a_space() -> None:
    s = example_summary("image")
    s["clean_accuracy"] = 0.9734
    assert "97.3 %" in parse(render_html(s)).texts["card-clean"]


def test_write_report_files_and_determinism(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(example_summary("image")))
    out = write_report(run)
    assert out == run / "report.html"
    first = {p.name: p.read_bytes() for p in [out, *sorted((run / "figures").iterdir())]}
    assert sorted(first) == ["curves.svg", "gallery.svg", "histograms.svg", "report.html"]
    for name, data in first.items():
        if name.endswith(".svg"):
            root = ET.fromstring(data)
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            assert len(data) < 150_000, f"{name} is {len(data)} bytes"
    assert len(first["report.html"]) < 400_000
    write_report(str(run))
    assert {p.name: p.read_bytes() for p in [out, *sorted((run / "figures").iterdir())]} == first
    # a fresh interpreter with another hash seed writes the same bytes
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text((run / "summary.json").read_text())
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    subprocess.run([sys.executable, "-c", "import sys; from advlab.report import write_report; "
                    "write_report(sys.argv[1])", str(other)], check=True, env=env)
    assert (other / "report.html").read_bytes() == first["report.html"]
    assert (other / "figures" / "gallery.svg").read_bytes() == first["gallery.svg"]


def test_write_report_replaces_stale_figures(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(example_summary("image")))
    write_report(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps(example_summary("tabular")))
    write_report(tmp_path)
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == ["curves.svg", "features.svg", "histograms.svg"]
    assert 'id="tabular"' in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_write_report_needs_a_summary(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="summary.json"):
        write_report(tmp_path)


SCHEMA_KEYS = {"schema", "created", "versions", "config", "model_card", "dataset_card",
               "clean_accuracy", "results", "worst_case", "curves", "checks", "histograms",
               "gallery", "tabular", "timing", "complete"}
ROW_KEYS = {"attack", "name", "norm", "eps", "minimal_norm", "robust_accuracy", "success_rate",
            "empirical_robustness", "valid_rate", "per_class_robust_accuracy", "gradients",
            "forwards", "seconds", *(f"{s}_{n}" for s in ("median", "mean")
                                     for n in ("l0", "l1", "l2", "linf"))}


@pytest.mark.parametrize("kind", ["image", "tabular"])
def test_example_summary_is_schema_complete(kind) -> None:
    s = example_summary(kind)
    assert set(s) == SCHEMA_KEYS and s["schema"] == "advlab.evaluation/1"
    assert json.loads(json.dumps(s, allow_nan=False)) == s
    assert s["dataset_card"]["kind"] == kind
    for row in s["results"]:
        assert set(row) == ROW_KEYS
        assert len(row["per_class_robust_accuracy"]) == s["dataset_card"]["num_classes"]
    for block in s["curves"].values():
        assert all(len(v) == len(block["eps"]) for v in block["series"].values())
        assert "worst case" in block["series"]
    if kind == "image":
        g = s["gallery"][0]
        assert len(g["clean"]) == len(g["adversarial"]) == 28 * 28 and s["tabular"] is None
    else:
        assert s["gallery"] == [] and any(not c["passed"] for c in s["checks"])
    assert example_summary(kind) == s                        # deterministic
    with pytest.raises(ValueError, match="kind"):
        example_summary("audio")


def test_render_does_not_mutate_the_summary() -> None:
    s = example_summary("image")
    before = copy.deepcopy(s)
    render_html(s)
    assert s == before


@pytest.mark.parametrize("kind", ["image", "tabular"])
def test_ids_are_unique_across_inlined_figures(pages, kind) -> None:
    ids = re.findall(r'\bid="([^"]+)"', pages[kind])
    assert len(ids) == len(set(ids))
    for ref in re.findall(r'(?:url\(#|href="#)([^")]+)', pages[kind]):
        assert ref in ids, f"dangling reference #{ref}"


def test_runner_extras_are_shown() -> None:
    """Keys the evaluation runner adds beyond the minimum: derived rows, per-class clean
    accuracy, success counts in the tabular section."""
    s = example_summary("tabular")
    s["per_class_clean_accuracy"] = [0.9, 0.7]
    s["results"][0]["derived"] = True
    s["tabular"]["fgsm@linf=0.01"]["successes"] = 1234
    html = render_html(s)
    assert ">derived</span>" in html and "1,234 successes" in html
    assert table_rows(html, "per-class-table")[0] == ["Clean", "90.0 %", "70.0 %"]
