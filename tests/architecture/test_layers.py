"""The import layers of docs/architecture.md, enforced: a module may import from its own layer
and the layers below it, never from a layer above (lazy imports inside functions count too).

The check reads the source with ``ast`` (nothing is imported), resolves relative imports and
``from advlab.x import name`` (the submodule ``advlab.x.name`` when ``name`` is one), and
reports every back-edge with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src" / "advlab"

# Lowest first. A module may import from its own layer and every layer before it.
LAYERS: list[tuple[str, ...]] = [
    ("norms", "domain_parsing", "domain", "errors"),
    ("threat",),
    ("advlab",),                   # the package root: the public API and __version__
    ("data",),
    ("models", "trees.ensemble", "trees.parse", "trees.model", "trees.io"),
    ("losses", "accelerate"),
    ("scoring",),
    ("attacks",),
    ("poisoning",),
    ("defenses", "trees"),         # trees: attacks, verification and defenses of ensembles
    ("explain",),
    ("evaluation",),
    ("report",),
    ("reproduce",),
    ("cli", "__main__"),
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module(path: Path, root: Path) -> str:
    """The dotted name of a source file (``advlab/x/__init__.py`` -> ``advlab.x``)."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The layer unit of a dotted module name inside the package: the longest prefix below
    ``advlab`` that :data:`LAYERS` names (``advlab.trees.io`` -> ``trees.io``; ``advlab.x.y``
    -> ``x``), so that a package spanning layers declares each of its parts."""
    parts = module.split(".")
    if len(parts) == 1:
        return "advlab"
    for end in range(len(parts), 2, -1):
        if ".".join(parts[1:end]) in RANK:
            return ".".join(parts[1:end])
    return parts[1]


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    module = _module(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("advlab")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "advlab":
                continue
            # from advlab.x import y: the submodule advlab.x.y when y is one
            base = root.joinpath(*target.split(".")[1:])
            for alias in node.names:
                sub = base / alias.name
                is_module = sub.is_dir() or sub.with_suffix(".py").is_file()
                found.append((node.lineno, f"{target}.{alias.name}" if is_module else target))
    return found


def back_edges(root: Path = ROOT) -> list[str]:
    """Every import of a higher layer, as ``file:line: a -> b``; unknown units are errors too."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        source = _unit(_module(path, root))
        for line, target in _imports(path, root):
            dest = _unit(target)
            if source not in RANK or dest not in RANK:
                problems.append(f"{rel}:{line}: {source} -> {dest} (not in LAYERS)")
            elif RANK[dest] > RANK[source]:
                problems.append(f"{rel}:{line}: {source} (layer {RANK[source]}) imports "
                                f"{target} (layer {RANK[dest]})")
    return problems


def test_no_module_imports_a_higher_layer() -> None:
    problems = back_edges()
    assert not problems, "imports against the layers of docs/architecture.md:\n" + \
        "\n".join(problems)


def test_the_check_catches_a_back_edge(tmp_path) -> None:
    pkg = tmp_path / "advlab"
    (pkg / "attacks").mkdir(parents=True)
    (pkg / "evaluation").mkdir()
    (pkg / "__init__.py").write_text("from advlab import norms\n")
    (pkg / "norms.py").write_text("")
    (pkg / "evaluation" / "__init__.py").write_text("from advlab.attacks import pgd\n")
    (pkg / "attacks" / "__init__.py").write_text("from . import pgd\n")
    (pkg / "attacks" / "pgd.py").write_text("import torch\n\n\ndef f():\n"
                                            "    from ..evaluation import score\n")
    assert back_edges(pkg) == ["advlab/attacks/pgd.py:5: attacks (layer 7) imports "
                               "advlab.evaluation (layer 11)"]


def test_every_package_is_in_a_layer() -> None:
    units = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    units = {"advlab" if u == "__init__" else u for u in units}
    assert units <= set(RANK), f"add {sorted(units - set(RANK))} to LAYERS"
