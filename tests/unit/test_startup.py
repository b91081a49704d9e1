"""The command line starts without the heavy libraries (issue 19): building the parser, `advlab
--help` and `advlab attacks` import neither torch nor matplotlib, captum, scikit-learn or pandas,
and every package still exports its names (loaded on first use)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "numpy", "matplotlib", "captum", "sklearn", "pandas", "scipy")


def imported_after(code: str) -> list[str]:
    """The heavy modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = (f"{code}\nimport sys, json\n"
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "from advlab.cli import build_parser; build_parser()",
    "import contextlib, io\nfrom advlab.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
    "    main(['attacks'])",
    "import contextlib, io\nfrom advlab.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try:\n        main(['--help'])\n    except SystemExit:\n        pass",
    "import advlab, advlab.attacks, advlab.evaluation, advlab.explain, advlab.defenses, "
    "advlab.models, advlab.poisoning",
])
def test_no_heavy_import(code) -> None:
    assert imported_after(code) == []


def test_attacks_lists_the_knobs_of_the_signatures() -> None:
    """`advlab attacks` reads the knobs from the source; they are the signature's."""
    from advlab.attacks import ATTACKS
    from advlab.attacks.knobs import static_knobs
    from advlab.evaluation import attack_parameters

    done = subprocess.run([sys.executable, "-m", "advlab", "attacks"], capture_output=True,
                          text=True, timeout=120)
    rows = {r["name"]: r for r in json.loads(done.stdout)["attacks"]}
    assert list(rows) == list(ATTACKS)
    for name, spec in ATTACKS.items():
        signature = {k: p.default for k, p in attack_parameters(name).items()}

        def own(knobs: dict, spec=spec) -> dict:  # a variant's fixed knobs are not its knobs
            return {k: v for k, v in knobs.items() if k not in spec.fixed}

        assert own(static_knobs(spec.function)) == own(static_knobs(spec.fn)) == signature, name
        assert set(rows[name]["knobs"]) == set(signature)


@pytest.mark.parametrize(("package", "name"), [
    ("advlab", "ThreatModel"), ("advlab.explain", "saliency"), ("advlab.attacks", "pgd"),
    ("advlab.attacks", "targets"), ("advlab.evaluation", "score"),
    ("advlab.defenses", "detection_study"), ("advlab.poisoning", "backdoor"),
    ("advlab.models", "save")])
def test_lazy_names_are_the_objects(package, name) -> None:
    """An export is the object, also after a submodule of the same name was imported."""
    if importlib.util.find_spec(f"{package}.{name}") is not None:
        importlib.import_module(f"{package}.{name}")  # the submodule that shares the name
    value = getattr(importlib.import_module(package), name)
    assert inspect.ismodule(value) == (name == "targets")
    assert name in dir(importlib.import_module(package))
    assert name in importlib.import_module(package).__all__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        importlib.import_module(package).nope  # noqa: B018
