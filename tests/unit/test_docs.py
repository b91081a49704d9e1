"""The Python examples in README.md and docs/*.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```python\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str]]:
    cases = []
    for path in DOCS:
        blocks = FENCE.findall(path.read_text())
        if blocks:
            cases.append((path.name, "\n".join(blocks)))
    return cases


@pytest.mark.parametrize(("name", "code"), _examples(), ids=[n for n, _ in _examples()])
def test_doc_examples_run(name: str, code: str, monkeypatch, tmp_path) -> None:
    if "../shared/data" in code and not (ROOT.parent / "shared" / "data").is_dir():
        pytest.skip(f"{name} needs ../shared/data, which is absent")
    monkeypatch.chdir(tmp_path if "../shared" not in code else ROOT)
    exec(compile(code, name, "exec"), {"__name__": f"docs_{name}"})
