"""Fuzzing the evaluation config reader (issue 19): random bytes, random edits of a real config
file (examples/nsl-kdd.toml) and random values for its keys. Whatever goes in, the reader
either returns a configuration or raises advlab's own :class:`ConfigError` (a ValueError) whose
message names the file, with the line where one is known; never a TypeError, a KeyError or a
decoder's exception."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advlab.evaluation.config import ConfigError, EvalConfig, build, read_toml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nsl-kdd.toml"
TEXT = EXAMPLE.read_text()
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def read(path: Path) -> EvalConfig | ConfigError:
    """Read and build; anything but a ConfigError propagates and fails the test."""
    try:
        return build(read_toml(path), {}, str(path))
    except ConfigError as err:
        assert str(path) in str(err), str(err)
        if err.line is not None:
            assert f"{path}:{err.line}" in str(err)
            assert 1 <= err.line <= max(1, path.read_bytes().count(b"\n") + 1)
        assert "\n" not in str(err), "one line"
        return err


def test_the_example_itself_reads(tmp_path) -> None:
    config = read(EXAMPLE)
    assert isinstance(config, EvalConfig) and config.n == 2000
    # fgsm gives no norm: it runs at both grids; the pgd without a norm keeps linf only,
    # since another pgd entry names l2
    assert [(a["name"], a["norm"], a.get("constraints", "domain")) for a in config.attacks] == [
        ("fgsm", "linf", "domain"), ("fgsm", "l2", "domain"), ("pgd", "linf", "domain"),
        ("pgd", "l2", "domain"), ("deepfool", "linf", "domain"), ("deepfool", "l2", "domain"),
        ("pgd", "linf", "box"), ("pgd", "l2", "box")]


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(tmp_path, data) -> None:
    path = tmp_path / "random.toml"
    path.write_bytes(data)
    read(path)


EDITS = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, len(TEXT)), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.integers(0, len(TEXT)),
              st.sampled_from(["=", "[", "]", "[[attack]]", '"', "\n", "-3", "0", "nan", "inf",
                               "true", "{", "}", ",", "name = 5", "steps = -1", "n = 0",
                               "eps = 1", "attack = 3", "[eps]", "l2 = []", "\x00", "é"])),
    st.tuples(st.just("text"), st.integers(0, len(TEXT)), st.text(max_size=8)),
    st.tuples(st.just("swap"), st.integers(0, 60), st.integers(0, 60)),
)


@FUZZ
@given(edits=st.lists(EDITS, min_size=1, max_size=4))
def test_random_edits_of_a_real_config(tmp_path, edits) -> None:
    text = TEXT
    for kind, at, what in edits:
        at = min(at, len(text))
        if kind == "delete":
            text = text[:at] + text[at + what:]
        elif kind in ("insert", "text"):
            text = text[:at] + str(what) + text[at:]
        else:
            lines = text.splitlines()
            if lines:
                i, j = at % len(lines), what % len(lines)
                lines[i], lines[j] = lines[j], lines[i]
                text = "\n".join(lines)
    path = tmp_path / "edited.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    outcome = read(path)
    if isinstance(outcome, ConfigError) and "invalid TOML" in str(outcome):
        try:  # where the decoder knows the position, the message gives it as file:line:column
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            if "(at line" in str(err):
                assert outcome.line is not None
                assert re.search(rf"{re.escape(str(path))}:\d+:\d+: invalid TOML",
                                 str(outcome))


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) |
    st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6)
KEYS = ["model", "n", "batch_size", "seed", "out", "split", "device", "dataset_options",
        "dataset", "data_path", "eps", "attack", "model_factory", "compile", "precision"]


@FUZZ
@given(key=st.sampled_from(KEYS), value=VALUES, attack=st.integers(0, 4),
       knob=st.sampled_from(["name", "norm", "steps", "constraints", "target", "label",
                             "candidates", "params"]))
def test_random_values_for_each_key(tmp_path, key, value, attack, knob) -> None:
    """Values of any type, at the top level and inside an [[attack]] table."""
    base = read_toml(EXAMPLE)
    for settings_ in ({**base, key: value},
                      {**base, "attack": [dict(a, **({knob: value} if i == attack else {}))
                                          for i, a in enumerate(base["attack"])]}):
        try:
            build(settings_, {}, str(EXAMPLE))
        except ConfigError as err:
            assert str(EXAMPLE) in str(err) and "\n" not in str(err)
