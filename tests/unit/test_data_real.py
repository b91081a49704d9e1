"""The loaders on the real data sets in ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from advlab.data import Dataset, kddcup99, load, mnist, nsl_kdd, tuandromd
from advlab.data.kdd_schema import BINARY_FEATURES, LOG1P_FEATURES, SERVICES
from conftest import require

pytestmark = pytest.mark.data


def assert_in_domain(ds: Dataset) -> None:
    assert bool(ds.domain.contains(ds.x_train).all())
    assert bool(ds.domain.contains(ds.x_test).all())
    json.dumps(ds.info)  # goes into model sidecars


def assert_one_hot(ds: Dataset) -> None:
    assert len(ds.domain.one_hot_groups) == 3
    widths = [len(g) for g in ds.domain.one_hot_groups]
    assert widths == [3, 70, 11]
    for x in (ds.x_train, ds.x_test):
        for g in ds.domain.one_hot_groups:
            block = x[:, list(g)]
            assert torch.equal(block.sum(1), torch.ones(len(x)))
            assert set(block.unique().tolist()) == {0.0, 1.0}


def kdd_kind(ds: Dataset, name: str) -> str:
    j = ds.feature_names.index(name)
    for kind in ("binary", "integer", "continuous"):
        mask = ds.domain.kind_mask(kind)  # type: ignore[arg-type]
        if mask is not None and bool(mask[j]):
            return kind
    return "continuous"


@pytest.fixture(scope="module")
def nsl_dir(data_root: Path) -> Path:
    folder = require(data_root / "nsl-kdd")
    require(folder / "KDDTrain+_20Percent.txt")
    require(folder / "KDDTest+.txt")
    return folder


@pytest.fixture(scope="module")
def nsl5(nsl_dir: Path) -> Dataset:
    return nsl_kdd(nsl_dir, labels="5class")


def test_nsl_kdd_shapes_and_counts(nsl5: Dataset) -> None:
    assert nsl5.x_train.shape == (25_192, 122) and nsl5.x_test.shape == (22_544, 122)
    assert nsl5.x_train.dtype == torch.float32
    assert nsl5.class_names == ("normal", "DoS", "Probe", "R2L", "U2R")
    assert torch.bincount(nsl5.y_test, minlength=5).tolist() == [9_711, 7_458, 2_421, 2_754, 200]
    assert len(nsl5.feature_names) == 122 and len(set(nsl5.feature_names)) == 122
    assert nsl5.feature_names[38:41] == ("protocol_type=icmp", "protocol_type=tcp",
                                         "protocol_type=udp")


def test_nsl_kdd_domain(nsl5: Dataset) -> None:
    assert_in_domain(nsl5)
    assert_one_hot(nsl5)
    d = nsl5.domain
    assert d.feature_names == nsl5.feature_names
    protocol = list(d.one_hot_groups[0])
    assert d.immutable is not None and d.immutable.nonzero()[:, 0].tolist() == protocol
    for name in BINARY_FEATURES:
        assert kdd_kind(nsl5, name) == "binary"
    for name in LOG1P_FEATURES + ("serror_rate", "dst_host_srv_rerror_rate"):
        assert kdd_kind(nsl5, name) == "continuous"
    assert kdd_kind(nsl5, "dst_host_count") == "integer"
    # dst_host_count spans 0..255 in training: the scaled grid step is 1/255.
    j = nsl5.feature_names.index("dst_host_count")
    assert float(d.resolution[j]) == pytest.approx(1 / 255)  # type: ignore[index]
    assert bool((d.lower == 0).all()) and bool((d.upper <= 1).all())  # type: ignore[operator]
    # num_outbound_cmds is constant 0: it can only take the value 0.
    assert float(d.upper[nsl5.feature_names.index("num_outbound_cmds")]) == 0.0  # type: ignore[index]


def test_nsl_kdd_raw_values_map_as_documented(nsl_dir: Path, nsl5: Dataset) -> None:
    first = (nsl_dir / "KDDTest+.txt").read_text().splitlines()[0].split(",")
    names = nsl5.feature_names
    x = nsl5.x_test[0]
    assert float(x[names.index("dst_host_count")]) == pytest.approx(int(first[31]) / 255)
    assert float(x[names.index(f"service={first[2]}")]) == 1.0
    assert float(x[names.index(f"flag={first[3]}")]) == 1.0
    assert float(x[names.index("same_srv_rate")]) == pytest.approx(float(first[28]))


def test_nsl_kdd_tftp_u_maps_to_its_column(nsl_dir: Path, nsl5: Dataset) -> None:
    col = nsl5.feature_names.index("service=tftp_u")
    assert col == 41 + SERVICES.index("tftp_u")
    lines = (nsl_dir / "KDDTest+.txt").read_text().splitlines()
    rows = [i for i, line in enumerate(lines) if line.split(",")[2] == "tftp_u"]
    assert rows  # tftp_u occurs in KDDTest+ ...
    assert float(nsl5.x_train[:, col].sum()) == 0.0  # ... but not in the 20 % training file
    assert nsl5.x_test[:, col].nonzero()[:, 0].tolist() == rows
    assert "service=tftp_u" in nsl5.info["test_categories_unseen_in_train"]


def test_nsl_kdd_flag_constant_in_train_survives_in_test(nsl5: Dataset) -> None:
    j = nsl5.feature_names.index("is_host_login")
    assert float(nsl5.x_train[:, j].max()) == 0.0
    assert float(nsl5.x_test[:, j].max()) == 1.0


def test_nsl_kdd_info(nsl5: Dataset) -> None:
    info = nsl5.info
    assert info["scaling"] == "min-max on train"
    assert set(info["log1p"]) >= {"duration", "src_bytes", "dst_bytes", "num_compromised",
                                  "num_root", "num_file_creations", "hot"}
    assert info["files"] == ["KDDTrain+_20Percent.txt", "KDDTest+.txt"]
    assert info["clipped_test_cells"] == sum(info["clipped_test_cells_by_feature"].values()) > 0
    assert info["skipped_rows"] == 0


def test_nsl_kdd_binary_and_drop_constant(nsl_dir: Path, nsl5: Dataset) -> None:
    ds = load("nsl-kdd", nsl_dir, drop_constant=True)
    assert ds.x_train.shape == (25_192, 121) and ds.x_test.shape == (22_544, 121)
    assert "num_outbound_cmds" not in ds.feature_names
    assert ds.class_names == ("normal", "attack")
    assert torch.equal(ds.y_test, (nsl5.y_test > 0).long())
    assert_in_domain(ds)
    keep = [nsl5.feature_names.index(n) for n in ds.feature_names]
    assert torch.equal(ds.x_test, nsl5.x_test[:, keep])


@pytest.fixture(scope="module")
def tuan(data_root: Path) -> Dataset:
    return tuandromd(require(data_root / "tuandromd" / "TUANDROMD.csv"))


def test_tuandromd_shapes_and_split(tuan: Dataset) -> None:
    assert tuan.x_train.shape[1] == 241 and len(tuan.feature_names) == 241
    assert tuan.feature_names[0] == "ACCESS_ALL_DOWNLOADS"
    n = tuan.x_train.shape[0] + tuan.x_test.shape[0]
    assert n == 4_464
    assert tuan.x_test.shape[0] == 1_340  # ceil(0.3 * 4464)
    assert tuan.class_names == ("goodware", "malware")
    train = torch.bincount(tuan.y_train, minlength=2)
    test = torch.bincount(tuan.y_test, minlength=2)
    assert (train + test).tolist() == [899, 3_565]
    # Stratified: the test share of each class is 30 % up to rounding.
    assert ((test.double() - 0.3 * (train + test).double()).abs() <= 1).all()


def test_tuandromd_domain_is_binary_and_increase_only(tuan: Dataset) -> None:
    assert_in_domain(tuan)
    d = tuan.domain
    assert bool(d.kind_mask("binary").all())  # type: ignore[union-attr]
    assert d.increase_only is not None and bool(d.increase_only.all())
    assert d.decrease_only is None and d.immutable is None
    assert set(tuan.x_train.unique().tolist()) == {0.0, 1.0}
    # Removing a feature an app has is outside the threat model; adding one is allowed.
    x0 = tuan.x_test[:8]
    removed = x0.clone()
    on = x0[0].nonzero()[0, 0]
    removed[0, on] = 0.0
    assert not bool(d.contains(removed, x0)[0])
    added = x0.clone()
    off = (x0[0] == 0).nonzero()[0, 0]
    added[0, off] = 1.0
    assert bool(d.contains(added, x0).all())


def test_mnist_real(data_root: Path) -> None:
    folder = require(data_root / "mnist")
    ds = mnist(folder)
    assert ds.x_train.shape == (10_000, 1, 28, 28) and ds.x_test.shape == (10_000, 1, 28, 28)
    assert torch.bincount(ds.y_test, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892,
                                                                958, 1028, 974, 1009]
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    assert torch.equal(ds.x_test * 255, torch.round(ds.x_test * 255))
    assert_in_domain(ds)
    assert mnist(folder, train_limit=100).x_train.shape[0] == 100


@pytest.mark.slow
def test_kddcup99_full_load(data_root: Path) -> None:
    file = require(data_root / "kddcup99" / "kddcup.data_10_percent.gz")
    ds = kddcup99(file.parent, labels="5class")
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 494_021
    assert ds.x_train.shape[1] == 122
    assert ds.info["split"]["stratify"] == "5class"
    counts = torch.bincount(ds.y_train, minlength=5) + torch.bincount(ds.y_test, minlength=5)
    assert counts.tolist() == [97_278, 391_458, 4_107, 1_126, 52]
    assert_in_domain(ds)
    assert_one_hot(ds)
