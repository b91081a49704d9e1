"""Malformed files: every loader names the file, the line (for text files) and the problem."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from advlab.data import DataFormatError, kddcup99, mnist, nsl_kdd, tuandromd
from advlab.data.kdd_schema import FEATURE_NAMES

# --------------------------------------------------------------------------------- NSL-KDD / KDD
NSL_ROWS = [
    "0,tcp,ftp_data,SF,491,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,0.00,0.00,0.00,0.00,1.00,0.00,"
    "0.00,150,25,0.17,0.03,0.17,0.00,0.00,0.00,0.05,0.00,normal,20",
    "0,udp,private,SF,28,0,0,3,0,0,0,0,0,0,0,0,0,0,0,0,0,0,80,80,0.00,0.00,0.00,0.00,1.00,0.00,"
    "0.00,255,80,0.31,0.02,0.31,0.00,0.00,0.00,0.00,0.00,teardrop,16",
    "2,tcp,http,SF,232,8153,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,5,5,0.20,0.20,0.00,0.00,1.00,0.00,"
    "0.00,30,255,1.00,0.00,0.03,0.04,0.03,0.01,0.00,0.01,normal,21",
    "0,tcp,private,S0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,123,6,1.00,1.00,0.00,0.00,0.05,0.07,"
    "0.00,255,26,0.10,0.05,0.00,0.00,1.00,1.00,0.00,0.00,neptune,21",
]
COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)} | {"label": 41, "difficulty": 42}


def nsl_row(k: int = 0, **changes: str) -> str:
    fields = NSL_ROWS[k % len(NSL_ROWS)].split(",")
    for name, value in changes.items():
        fields[COLUMN[name]] = value
    return ",".join(fields)


def kdd_row(k: int = 0, **changes: str) -> str:
    """A KDD Cup row: no difficulty column, label with a trailing dot."""
    fields = nsl_row(k).split(",")[:42]
    fields[41] += "."
    for name, value in changes.items():
        fields[COLUMN[name]] = value
    return ",".join(fields)


def write_nsl(folder: Path, train_lines: list[str], test_lines: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("".join(line + "\n" for line in train_lines))
    test = test_lines if test_lines is not None else [nsl_row(k) for k in range(4)]
    (folder / "test.txt").write_text("".join(line + "\n" for line in test))
    return folder


def load_nsl(folder: Path, **kw: object):
    return nsl_kdd(folder, train_file="train.txt", test_file="test.txt", **kw)  # type: ignore[arg-type]


def loc(path: Path, line: int) -> str:
    """The ``file:line:`` prefix of a DataFormatError message, as a regex."""
    return re.escape(f"{path}:{line}: ")


def good_then(bad: str, n_good: int = 2) -> list[str]:
    """``n_good`` valid rows, then ``bad`` (so the bad row is on line ``n_good + 1``)."""
    return [nsl_row(k) for k in range(n_good)] + [bad, nsl_row(3)]


NSL_CASES = {
    "wrong_column_count": (nsl_row(0).rsplit(",", 1)[0],
                           r"expected 43 comma-separated columns .*found 42"),
    "too_many_columns": (nsl_row(0) + ",7", r"expected 43 comma-separated columns .*found 44"),
    "non_numeric": (nsl_row(src_bytes="12kb"),
                    r"column 5 \(src_bytes\): value '12kb' is not a number"),
    "missing_cell": (nsl_row(dst_bytes=""), r"column 6 \(dst_bytes\): missing value"),
    "missing_category": (nsl_row(service=""), r"column 3 \(service\): missing value"),
    "unknown_protocol": (nsl_row(protocol_type="sctp"),
                         r"column 2 \(protocol_type\): unknown protocol_type 'sctp'"),
    "unknown_service": (nsl_row(service="quic"), r"column 3 \(service\): unknown service 'quic'"),
    "unknown_flag": (nsl_row(flag="XX"), r"column 4 \(flag\): unknown flag 'XX'"),
    "unknown_label": (nsl_row(label="martian"), r"column 42 \(label\): unknown label 'martian'"),
    "difficulty_out_of_range": (nsl_row(difficulty="22"),
                                r"column 43 \(difficulty\): value '22' is not an integer"),
    "binary_flag_not_01": (nsl_row(logged_in="2"), r"column 12 \(logged_in\): value '2' is not 0"),
    "rate_above_one": (nsl_row(serror_rate="1.5"),
                       r"column 25 \(serror_rate\): value '1.5' is not a rate in \[0, 1\]"),
    "negative_count": (nsl_row(count="-1"),
                       r"column 23 \(count\): value '-1' is not a non-negative integer"),
    "fractional_count": (nsl_row(srv_count="2.5"),
                         r"column 24 \(srv_count\): value '2.5' is not a non-negative integer"),
    "not_finite": (nsl_row(duration="nan"), r"column 1 \(duration\): value 'nan' is not finite"),
}


@pytest.mark.parametrize("case", sorted(NSL_CASES))
def test_nsl_kdd_malformed_row(tmp_path: Path, case: str) -> None:
    bad, message = NSL_CASES[case]
    folder = write_nsl(tmp_path, good_then(bad))
    with pytest.raises(DataFormatError, match=loc(folder / "train.txt", 3) + message) as exc:
        load_nsl(folder)
    assert exc.value.line == 3 and exc.value.path == str(folder / "train.txt")


def test_nsl_kdd_error_in_test_file_names_it(tmp_path: Path) -> None:
    test = [nsl_row(k) for k in range(5)] + [nsl_row(flag="ZZ")]
    folder = write_nsl(tmp_path, [nsl_row(k) for k in range(4)], test)
    with pytest.raises(DataFormatError, match=loc(folder / "test.txt", 6) + r"column 4 \(flag\)"):
        load_nsl(folder)


def test_nsl_kdd_empty_file(tmp_path: Path) -> None:
    folder = write_nsl(tmp_path, [])
    file = folder / "train.txt"
    with pytest.raises(DataFormatError, match=re.escape(f"{file}: ") + "the file is empty") as exc:
        load_nsl(folder)
    assert exc.value.line is None  # an empty file has no line to point at


def test_nsl_kdd_reports_first_bad_line_in_file_order(tmp_path: Path) -> None:
    # A numeric error (found by the bulk conversion) before a category error (found at once).
    lines = [nsl_row(k) for k in range(60)]
    lines[40] = nsl_row(src_bytes="x")
    lines[50] = nsl_row(service="nope")
    folder = write_nsl(tmp_path, lines)
    with pytest.raises(DataFormatError, match=loc(folder / "train.txt", 41) + r".*src_bytes"):
        load_nsl(folder)
    # And the other way round.
    lines[40], lines[50] = nsl_row(service="nope"), nsl_row(src_bytes="x")
    write_nsl(tmp_path, lines)
    with pytest.raises(DataFormatError, match=loc(folder / "train.txt", 41) + r".*service"):
        load_nsl(folder)


def test_nsl_kdd_skip_bad_rows_reports_count(tmp_path: Path) -> None:
    lines = [nsl_row(k) for k in range(8)]
    lines[2] = nsl_row(src_bytes="oops")
    lines[5] = nsl_row(label="martian")
    folder = write_nsl(tmp_path, lines)
    with pytest.warns(UserWarning, match=r"train\.txt: skipped 2 malformed row\(s\).*\[3, 6\]"):
        ds = load_nsl(folder, on_bad_rows="skip")
    assert ds.info["skipped_rows"] == 2
    assert ds.info["skipped_rows_by_file"] == {"train.txt": 2, "test.txt": 0}
    assert ds.x_train.shape[0] == 6
    assert ds.domain.contains(ds.x_train).all()


def test_nsl_kdd_skip_with_every_row_bad_still_raises(tmp_path: Path) -> None:
    folder = write_nsl(tmp_path, [nsl_row(service="nope"), nsl_row(flag="??")])
    with pytest.raises(DataFormatError, match=loc(folder / "train.txt", 1) + r"no valid rows"):
        load_nsl(folder, on_bad_rows="skip")


def test_nsl_kdd_blank_lines_are_ignored_and_counted(tmp_path: Path) -> None:
    folder = write_nsl(tmp_path, [nsl_row(0), "", nsl_row(1), "   ", nsl_row(2)])
    ds = load_nsl(folder)
    assert ds.x_train.shape[0] == 3
    assert ds.info["blank_lines_ignored"] == 2


def test_nsl_kdd_bad_option_values(tmp_path: Path) -> None:
    folder = write_nsl(tmp_path, [nsl_row(k) for k in range(4)])
    with pytest.raises(ValueError, match="on_bad_rows"):
        load_nsl(folder, on_bad_rows="ignore")
    with pytest.raises(ValueError, match="labels"):
        load_nsl(folder, labels="3class")


def test_nsl_kdd_small_file_encoding(tmp_path: Path) -> None:
    """Hand-checkable encoding: min-max with train statistics, clipping, one-hot, domain."""
    train = [nsl_row(k) for k in range(4)]
    test = [nsl_row(3, count="1000", service="tftp_u")]  # count above the training max 123
    folder = write_nsl(tmp_path, train, test)
    ds = load_nsl(folder, labels="5class")
    names = ds.feature_names
    assert len(names) == 122
    count = names.index("count")
    # Train counts 2, 80, 5, 123 -> (c - 2) / 121.
    expected = torch.tensor([0.0, 78 / 121, 3 / 121, 1.0])
    torch.testing.assert_close(ds.x_train[:, count], expected)
    assert float(ds.x_test[0, count]) == 1.0  # clipped
    assert ds.info["clipped_test_cells_by_feature"]["count"] == 1
    assert float(ds.x_test[0, names.index("service=tftp_u")]) == 1.0
    assert ds.info["test_categories_unseen_in_train"] == ["service=tftp_u"]
    assert ds.y_train.tolist() == [0, 1, 0, 1]  # normal, teardrop (DoS), normal, neptune (DoS)
    res = ds.domain.resolution[count]  # type: ignore[index]
    assert float(res) == pytest.approx(1 / 121)


# --------------------------------------------------------------------------------- KDD Cup 99
def write_kdd(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.writelines(line + "\n" for line in lines)
    return path


def kdd_lines(bad: str | None = None, n: int = 12, at: int = 4) -> list[str]:
    lines = [kdd_row(k) for k in range(n)]
    if bad is not None:
        lines[at - 1] = bad
    return lines


KDD_CASES = {
    "wrong_column_count": (kdd_row(0) + ",21", r"expected 42 comma-separated columns .*found 43"),
    "non_numeric": (kdd_row(dst_host_count="many"),
                    r"column 32 \(dst_host_count\): value 'many' is not a number"),
    "missing_cell": (kdd_row(hot=""), r"column 10 \(hot\): missing value"),
    "unknown_category": (kdd_row(flag="S9"), r"column 4 \(flag\): unknown flag 'S9'"),
    "unknown_label": (kdd_row(label="martian."), r"column 42 \(label\): unknown label 'martian\.'"),
}


@pytest.mark.parametrize("case", sorted(KDD_CASES))
def test_kddcup99_malformed_row(tmp_path: Path, case: str) -> None:
    bad, message = KDD_CASES[case]
    file = write_kdd(tmp_path / "kddcup.data_10_percent.gz", kdd_lines(bad))
    with pytest.raises(DataFormatError, match=loc(file, 4) + message) as exc:
        kddcup99(tmp_path)  # the folder is accepted as well as the file
    assert exc.value.line == 4


def test_kddcup99_empty_file(tmp_path: Path) -> None:
    file = write_kdd(tmp_path / "kdd.gz", [])
    with pytest.raises(DataFormatError, match=re.escape(f"{file}: ") + "the file is empty"):
        kddcup99(file)


def test_kddcup99_truncated_gzip(tmp_path: Path) -> None:
    good = write_kdd(tmp_path / "good.gz", kdd_lines(n=2000))
    bad = tmp_path / "kdd.gz"
    bad.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(DataFormatError, match=re.escape(str(bad)) + r".*gzip"):
        kddcup99(bad)


def test_kddcup99_skip_bad_rows(tmp_path: Path) -> None:
    lines = kdd_lines(kdd_row(service="??"))
    lines[7] = kdd_row(src_bytes="")
    file = write_kdd(tmp_path / "kdd.gz", lines)
    with pytest.warns(UserWarning, match=r"skipped 2 malformed row\(s\).*\[4, 8\]"):
        ds = kddcup99(file, test_size=0.5, on_bad_rows="skip")
    assert ds.info["skipped_rows"] == 2
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 10


def test_kddcup99_plain_text_and_labels_without_dot(tmp_path: Path) -> None:
    # Gzip is detected by magic bytes, not by the name; a label without the dot is accepted.
    file = tmp_path / "kddcup.data_10_percent"
    file.write_text("".join(kdd_row(k, label=nsl_row(k).split(",")[41]) + "\n" for k in range(8)))
    ds = kddcup99(file, test_size=0.5, labels="5class")
    assert ds.x_train.shape[1] == 122
    assert sorted(ds.y_train.tolist() + ds.y_test.tolist()) == [0, 0, 0, 0, 1, 1, 1, 1]


# --------------------------------------------------------------------------------- TUANDROMD
T_NAMES = [f"PERM_{i}" for i in range(241)] + ["Label"]


def t_row(seed: int, label: str | None = None, **cells: str) -> list[str]:
    rng = np.random.default_rng(seed)
    row = [str(v) for v in rng.integers(0, 2, size=241)] + [label or str(seed % 2)]
    for col, value in cells.items():
        row[int(col.removeprefix("c"))] = value
    return row


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = T_NAMES) -> Path:
    lines = ([",".join(header)] if header is not None else []) + [",".join(r) for r in rows]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def t_rows(bad: list[str] | None = None, n: int = 12, at_line: int = 5) -> list[list[str]]:
    rows = [t_row(k) for k in range(n)]
    if bad is not None:
        rows[at_line - 2] = bad  # line 1 is the header
    return rows


T_CASES = {
    "wrong_column_count": (t_row(0)[:-2] + ["1"],
                           r"expected 242 comma-separated columns .*found 241"),
    "non_binary_value": (t_row(0, c7="2"), r"column 8 \(PERM_7\): value '2' is not 0 or 1"),
    "non_numeric_value": (t_row(0, c3="yes"), r"column 4 \(PERM_3\): value 'yes' is not 0 or 1"),
    "missing_cell": (t_row(0, c240=""), r"column 241 \(PERM_240\): missing value"),
    "unknown_label": (t_row(0, label="benign"),
                      r"column 242 \(Label\): unknown label 'benign' is not 0 or 1"),
    "missing_label": (t_row(0, label=" "), r"column 242 \(Label\): missing value"),
}


@pytest.mark.parametrize("case", sorted(T_CASES))
def test_tuandromd_malformed_row(tmp_path: Path, case: str) -> None:
    bad, message = T_CASES[case]
    file = write_csv(tmp_path / "TUANDROMD.csv", t_rows(bad))
    with pytest.raises(DataFormatError, match=loc(file, 5) + message) as exc:
        tuandromd(tmp_path)
    assert exc.value.line == 5 and exc.value.path == str(file)


def test_tuandromd_empty_file(tmp_path: Path) -> None:
    file = tmp_path / "t.csv"
    file.write_text("")
    with pytest.raises(DataFormatError, match=re.escape(f"{file}: ") + "the file is empty"):
        tuandromd(file)


def test_tuandromd_header_only(tmp_path: Path) -> None:
    file = write_csv(tmp_path / "t.csv", [])
    with pytest.raises(DataFormatError, match=re.escape(f"{file}: ") + "no records"):
        tuandromd(file)


def test_tuandromd_missing_header(tmp_path: Path) -> None:
    file = write_csv(tmp_path / "t.csv", t_rows(), header=None)
    with pytest.raises(DataFormatError, match=loc(file, 1) + "missing header row"):
        tuandromd(file)


def test_tuandromd_wrong_header(tmp_path: Path) -> None:
    file = write_csv(tmp_path / "t.csv", t_rows(), header=T_NAMES[:-1] + ["Class"])
    with pytest.raises(DataFormatError, match=loc(file, 1) + "header .*'Label'"):
        tuandromd(file)


def test_tuandromd_skip_bad_rows(tmp_path: Path) -> None:
    rows = t_rows(t_row(0, c5="x"), n=20)
    rows[10] = t_row(1, label="7")  # line 12
    file = write_csv(tmp_path / "t.csv", rows)
    with pytest.warns(UserWarning, match=r"skipped 2 malformed row\(s\).*\[5, 12\]"):
        ds = tuandromd(file, on_bad_rows="skip")
    assert ds.info["skipped_rows"] == 2
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 18


def test_tuandromd_skip_with_every_row_bad_still_raises(tmp_path: Path) -> None:
    file = write_csv(tmp_path / "t.csv", [t_row(0, c5="x"), t_row(1, label="7")])
    with pytest.raises(DataFormatError, match=loc(file, 2) + r"no valid rows: all 2 rows"):
        tuandromd(file, on_bad_rows="skip")


def test_skipped_rows_warning_points_at_the_caller(tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "t.csv", t_rows(t_row(0, c5="x"), n=20))
    kdd_file = write_kdd(tmp_path / "kdd.gz", kdd_lines(kdd_row(service="??")))
    for load in (lambda: tuandromd(csv_file, on_bad_rows="skip"),
                 lambda: kddcup99(kdd_file, test_size=0.5, on_bad_rows="skip")):
        with pytest.warns(UserWarning, match="skipped 1 malformed row") as caught:
            load()
        assert caught[0].filename == __file__


def test_tuandromd_accepts_float_spelling(tmp_path: Path) -> None:
    rows = t_rows(n=10)
    rows[0] = t_row(0, c0="1.0", c1=" 0")
    file = write_csv(tmp_path / "t.csv", rows)
    ds = tuandromd(file)
    x = torch.cat([ds.x_train, ds.x_test])
    assert x.shape == (10, 241) and set(x.unique().tolist()) <= {0.0, 1.0}


# --------------------------------------------------------------------------------- IDX (MNIST)
def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = magic if magic is not None else (0x0803 if array.ndim == 3 else 0x0801)
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = True,
                prefix: str = "train") -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {}
    for split, n, stem in (("train", n_train, prefix), ("test", n_test, "t10k")):
        images = rng.integers(0, 256, size=(n, 28, 28))
        labels = np.arange(n) % 10
        for kind, array, tag in (("images", images, "idx3"), ("labels", labels, "idx1")):
            data = idx_bytes(array)
            path = folder / f"{stem}-{kind}-{tag}-ubyte{'.gz' if gz else ''}"
            path.write_bytes(gzip.compress(data) if gz else data)
            files[f"{split}_{kind}"] = path
    return files


def test_mnist_standard_names_raw_and_gzip(tmp_path: Path) -> None:
    write_mnist(tmp_path / "raw", gz=False)
    write_mnist(tmp_path / "gz", gz=True, prefix="train-10k")
    a, b = mnist(tmp_path / "raw"), mnist(tmp_path / "gz", train_limit=4)
    assert a.x_train.shape == (6, 1, 28, 28) and a.x_test.shape == (4, 1, 28, 28)
    assert b.x_train.shape == (4, 1, 28, 28)
    assert torch.equal(a.x_train[:4], b.x_train)
    assert torch.equal(a.y_test, torch.tensor([0, 1, 2, 3]))
    assert a.domain.contains(a.x_train).all()


def test_mnist_bad_magic(tmp_path: Path) -> None:
    files = write_mnist(tmp_path, gz=False)
    files["train_labels"].write_bytes(idx_bytes(np.arange(6), magic=0x0803)[:8] + bytes(6))
    with pytest.raises(DataFormatError, match=re.escape(f"{files['train_labels']}: ")
                       + r"bad magic number 0x00000803"):
        mnist(tmp_path)


def test_mnist_truncated_data(tmp_path: Path) -> None:
    files = write_mnist(tmp_path)
    data = gzip.decompress(files["test_images"].read_bytes())
    files["test_images"].write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(DataFormatError, match=re.escape(f"{files['test_images']}: ")
                       + r"truncated data: .* need 3136 data bytes .* found 3126"):
        mnist(tmp_path)


def test_mnist_trailing_bytes(tmp_path: Path) -> None:
    files = write_mnist(tmp_path, gz=False)
    files["train_labels"].write_bytes(files["train_labels"].read_bytes() + b"\x00")
    with pytest.raises(DataFormatError, match=r"trailing bytes"):
        mnist(tmp_path)


def test_mnist_count_mismatch(tmp_path: Path) -> None:
    files = write_mnist(tmp_path, gz=False)
    files["train_labels"].write_bytes(idx_bytes(np.arange(5)))
    with pytest.raises(DataFormatError, match=re.escape(f"{files['train_labels']}: ")
                       + r"count mismatch: 5 labels for 6 images"):
        mnist(tmp_path)


def test_mnist_label_out_of_range(tmp_path: Path) -> None:
    files = write_mnist(tmp_path, gz=False)
    files["test_labels"].write_bytes(idx_bytes(np.array([0, 1, 12, 3])))
    with pytest.raises(DataFormatError, match=r"label 12 of item 2 is outside 0\.\.9"):
        mnist(tmp_path)


def test_mnist_empty_and_corrupt_gzip(tmp_path: Path) -> None:
    files = write_mnist(tmp_path)
    files["train_images"].write_bytes(b"")
    with pytest.raises(DataFormatError, match="too short for an IDX header"):
        mnist(tmp_path)
    files["train_images"].write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataFormatError, match="gzip"):
        mnist(tmp_path)


def test_mnist_missing_and_ambiguous_files(tmp_path: Path) -> None:
    files = write_mnist(tmp_path)
    files["test_labels"].unlink()
    with pytest.raises(FileNotFoundError, match=r"no test labels file matching"):
        mnist(tmp_path)
    write_mnist(tmp_path)
    write_mnist(tmp_path, gz=False)  # train-images-idx3-ubyte beside train-images-...gz
    with pytest.raises(FileNotFoundError, match=r"ambiguous train images files"):
        mnist(tmp_path)


def test_tuandromd_header_errors_name_the_missing_and_extra_columns(tmp_path: Path) -> None:
    """With the data set's own names, a lost column is named; the count is said plainly."""
    from advlab.data.tuandromd_features import FEATURE_NAMES

    names = list(FEATURE_NAMES)
    cases = {
        "missing": (names[:10] + names[11:] + ["Label"],
                    r"header has 241 columns, expected 242 \(241 feature names, then 'Label'\): "
                    rf"1 feature column\(s\) missing: {re.escape(repr(names[10]))}; 240 feature "
                    "columns where 241 are expected"),
        "no_label": (names, r"header has 241 columns, expected 242 .*: no 'Label' column"),
        "extra": (names + ["SEND_SMS_2", "Label"],
                  r"header has 243 columns, .*1 unknown column\(s\): 'SEND_SMS_2'"),
        "label_moved": (names[:5] + ["Label"] + names[5:],
                        r"header is not 241 feature names, then 'Label': 'Label' is column 6, "
                        "not the last"),
    }
    for case, (header, message) in cases.items():
        file = write_csv(tmp_path / f"{case}.csv", t_rows(), header=header)
        with pytest.raises(DataFormatError, match=loc(file, 1) + message):
            tuandromd(file)
    ok = write_csv(tmp_path / "ok.csv", t_rows(), header=names + ["Label"])
    assert tuandromd(ok).feature_names == tuple(names)
