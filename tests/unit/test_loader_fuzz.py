"""Fuzzing every file loader: random bytes and random mutations of real files.

The fixtures are a few dozen records cut from the real data sets (``../shared/data``) at test
time, so the tests are marked ``data``. Whatever a loader is fed, it either loads it or raises
advlab's own error (:class:`~advlab.errors.DataFormatError` for data,
:class:`~advlab.errors.ModelFileError` for model folders) naming the file, and the line where
the file has lines. Any other exception fails the test. The mutations are byte flips,
truncation, line duplication and deletion, and (for the comma-separated files) column deletion.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advlab.data import kddcup99, mnist, nsl_kdd, tuandromd
from advlab.errors import AdvlabError, DataFormatError, ModelFileError
from advlab.models import io, mlp
from conftest import require

pytestmark = pytest.mark.data

FUZZ = settings(max_examples=50, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
ROWS = 40  # records per fixture


# ----------------------------------------------------------------------------- the mutations
@st.composite
def mutations(draw: st.DrawFn, data: bytes, csv: bool = False) -> bytes:
    """``data`` after 1-4 random edits, or (one time in eight) random bytes instead."""
    if draw(st.integers(0, 7)) == 0:
        return draw(st.binary(max_size=2 * len(data) + 16))
    ops = ["flip", "truncate", "duplicate", "delete"] + (["column"] if csv else [])
    for op in draw(st.lists(st.sampled_from(ops), min_size=1, max_size=4)):
        lines = data.split(b"\n")
        if op == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif op == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif op == "duplicate":
            i = draw(st.integers(0, len(lines) - 1))
            data = b"\n".join(lines[:i + 1] + lines[i:])
        elif op == "delete":
            i = draw(st.integers(0, len(lines) - 1))
            data = b"\n".join(lines[:i] + lines[i + 1:])
        elif op == "column":
            j, every = draw(st.integers(0, 45)), draw(st.booleans())
            first = draw(st.integers(0, len(lines) - 1))
            rows = [line.split(b",") for line in lines]
            for k in range(len(rows)) if every else [first]:
                if j < len(rows[k]):
                    del rows[k][j]
            data = b"\n".join(b",".join(r) for r in rows)
    return data


def expect_own_error(load: Callable[[], object], files: list[Path],
                     lines: int | None) -> None:
    """``load()`` returns, or raises advlab's error naming one of ``files`` (and a line in
    ``1..lines + 1`` when it names one; ``lines=None``: binary files, which have no lines)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped rows are warned about: not the point here
        try:
            load()
        except AdvlabError as err:
            assert isinstance(err, (DataFormatError, ModelFileError)), repr(err)
            assert err.path in {str(f) for f in files} | {str(f.parent) for f in files}, err
            assert str(err).startswith(err.path), err
            if lines is None:
                assert err.line is None, err
            elif err.line is not None:
                assert 1 <= err.line <= lines + 1, err


def count_lines(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") + 1


# ----------------------------------------------------------------------------- fixtures
def head_lines(path: Path, n: int, *, skip: int = 0, opener: Callable = open) -> bytes:
    with opener(path, "rb") as fh:
        lines = [fh.readline() for _ in range(skip + n)]
    return b"".join(lines[skip:])


@pytest.fixture(scope="module")
def nsl(data_root: Path) -> tuple[bytes, bytes]:
    folder = require(data_root / "nsl-kdd")
    # rows from both ends of the file, so both classes and many services occur
    return (head_lines(folder / "KDDTrain+_20Percent.txt", ROWS),
            head_lines(folder / "KDDTest+.txt", ROWS, skip=1000))


@pytest.fixture(scope="module")
def kdd(data_root: Path) -> bytes:
    file = require(data_root / "kddcup99" / "kddcup.data_10_percent.gz")
    rows = head_lines(file, 4000, opener=gzip.open).split(b"\n")
    return b"\n".join(rows[::100]) + b"\n"  # 40 rows, normal and attacks


@pytest.fixture(scope="module")
def tuan(data_root: Path) -> bytes:
    file = require(data_root / "tuandromd" / "TUANDROMD.csv")
    text = file.read_bytes().split(b"\n")
    return b"\n".join(text[:1] + text[1:4000:100]) + b"\n"  # header and 40 rows


@pytest.fixture(scope="module")
def idx(data_root: Path) -> dict[str, bytes]:
    folder = require(data_root / "mnist")
    out = {}
    for name in ("train-10k-images-idx3-ubyte", "train-10k-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = gzip.decompress((folder / f"{name}.gz").read_bytes())
        images = "images" in name
        header = 16 if images else 8
        item = 28 * 28 if images else 1
        head = bytearray(raw[:header])
        head[4:8] = (12).to_bytes(4, "big")  # 12 items
        out[name] = bytes(head) + raw[header:header + 12 * item]
    return out


# ----------------------------------------------------------------------------- data loaders
@FUZZ
@given(data=st.data())
def test_nsl_kdd_survives_mutations(nsl, data) -> None:
    train, test = nsl
    which = data.draw(st.sampled_from(["train", "test"]))
    content = data.draw(mutations(train if which == "train" else test, csv=True))
    on_bad_rows = data.draw(st.sampled_from(["raise", "skip"]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "train.txt").write_bytes(content if which == "train" else train)
        (folder / "test.txt").write_bytes(content if which == "test" else test)
        expect_own_error(lambda: nsl_kdd(folder, train_file="train.txt", test_file="test.txt",
                                         on_bad_rows=on_bad_rows),
                         [folder / "train.txt", folder / "test.txt"], count_lines(content))


@FUZZ
@given(data=st.data())
def test_kddcup99_survives_mutations_of_text_and_gzip(kdd, data) -> None:
    layer = data.draw(st.sampled_from(["text", "gzip text", "gzip bytes"]))
    if layer == "gzip bytes":  # corrupt the compressed stream itself
        content = data.draw(mutations(gzip.compress(kdd, mtime=0)))
        lines = count_lines(kdd) + 1
    else:
        text = data.draw(mutations(kdd, csv=True))
        content = gzip.compress(text, mtime=0) if layer == "gzip text" else text
        lines = count_lines(text)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "kddcup.data_10_percent.gz"
        file.write_bytes(content)
        on_bad_rows = data.draw(st.sampled_from(["raise", "skip"]))
        expect_own_error(lambda: kddcup99(file, test_size=0.5, on_bad_rows=on_bad_rows), [file],
                         lines)


@FUZZ
@given(data=st.data())
def test_tuandromd_survives_mutations(tuan, data) -> None:
    content = data.draw(mutations(tuan, csv=True))
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "TUANDROMD.csv"
        file.write_bytes(content)
        on_bad_rows = data.draw(st.sampled_from(["raise", "skip"]))
        expect_own_error(lambda: tuandromd(file, on_bad_rows=on_bad_rows), [file],
                         count_lines(content))


@FUZZ
@given(data=st.data())
def test_mnist_survives_mutations_raw_and_gzip(idx, data) -> None:
    target = data.draw(st.sampled_from(sorted(idx)))
    compress = data.draw(st.booleans())
    content = data.draw(mutations(idx[target]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = []
        for name, raw in idx.items():
            payload = content if name == target else raw
            path = folder / (name + (".gz" if compress else ""))
            path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
            files.append(path)
        expect_own_error(lambda: mnist(folder), files + [folder], None)


# ----------------------------------------------------------------------------- model folders
@pytest.fixture(scope="module")
def model_folder() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = io.save(mlp(6, 3, hidden=(5,)), Path(tmp) / "m", architecture="mlp",
                         arguments={"in_features": 6, "classes": 3, "hidden": [5]},
                         class_names=["a", "b", "c"], metrics={"test_accuracy": 0.5})
        return {name: (folder / name).read_bytes() for name in (io.SIDECAR, io.WEIGHTS)}


@FUZZ
@given(data=st.data())
def test_model_loader_survives_mutations(model_folder, data) -> None:
    target = data.draw(st.sampled_from(sorted(model_folder)))
    content = data.draw(mutations(model_folder[target]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, raw in model_folder.items():
            (folder / name).write_bytes(content if name == target else raw)
        lines = count_lines(content) if target == io.SIDECAR else None
        sidecar, weights = folder / io.SIDECAR, folder / io.WEIGHTS
        if target == io.WEIGHTS:
            expect_own_error(lambda: io.load(folder), [weights], None)
        else:  # a sidecar error names a line, a weights error (a valid sidecar of another
            # architecture) names no line
            try:
                io.load(folder)
            except ModelFileError as err:
                assert err.path in (str(sidecar), str(weights)), err
                assert err.line is None or 1 <= err.line <= lines, err


def test_the_mutations_do_reach_the_loaders(model_folder) -> None:
    """The fixtures load unmutated, so the fuzzing starts from valid files."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, raw in model_folder.items():
            (folder / name).write_bytes(raw)
        model, sidecar = io.load(folder)
    assert sidecar["class_names"] == ["a", "b", "c"]
    assert model(torch.zeros(2, 6)).shape == (2, 3)
    assert json.loads(model_folder[io.SIDECAR])["architecture"] == "mlp"
