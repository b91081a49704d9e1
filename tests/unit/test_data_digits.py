"""The embedded digits data set and the loader registry."""

from __future__ import annotations

import json

import pytest
import torch

from advlab.data import DATASETS, Dataset, digits, load


def test_digits_shape_range_and_grid() -> None:
    ds = digits()
    assert ds.name == "digits"
    assert ds.x_train.shape[1:] == (1, 8, 8) and ds.x_train.dtype == torch.float32
    assert ds.y_train.dtype == torch.int64
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 1797
    assert ds.x_test.shape[0] == 450  # ceil(0.25 * 1797)
    x = torch.cat([ds.x_train, ds.x_test])
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # Pixels are the integers 0..16 divided by 16.
    assert torch.equal(x * 16, torch.round(x * 16))
    assert ds.class_names == tuple(str(d) for d in range(10))
    assert len(ds.feature_names) == 64
    assert ds.domain.is_box
    assert bool(ds.domain.contains(ds.x_train).all()) and bool(ds.domain.contains(ds.x_test).all())


def test_digits_split_is_stratified_and_seeded() -> None:
    a, b, c = digits(seed=0), digits(seed=0), digits(seed=1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_test, c.y_test)
    train = torch.bincount(a.y_train, minlength=10)
    test = torch.bincount(a.y_test, minlength=10)
    total = train + test
    # Stratified: each class's test share is 25 % up to rounding.
    assert ((test.double() - 0.25 * total.double()).abs() <= 1).all()
    # No sample in both splits (the images are distinct enough to compare rows).
    assert a.x_train.shape[0] + a.x_test.shape[0] == 1797


def test_digits_upsample() -> None:
    small, big = digits(), digits(upsample=True)
    assert big.x_train.shape[1:] == (1, 28, 28)
    assert float(big.x_train.min()) >= 0.0 and float(big.x_train.max()) <= 1.0
    assert torch.equal(small.y_train, big.y_train)
    # Bilinear resizing keeps the mean intensity of each image roughly.
    diff = (small.x_train.mean(dim=(1, 2, 3)) - big.x_train.mean(dim=(1, 2, 3))).abs()
    assert float(diff.max()) < 0.05
    assert big.domain.contains(big.x_test).all()


def test_digits_info_is_json() -> None:
    ds = digits(upsample=True)
    info = json.loads(json.dumps(ds.info))
    assert info["split"] == {"test_size": 0.25, "seed": 0, "stratify": "label"}
    assert "load_digits" in info["source"]


def test_registry_names_and_specs() -> None:
    assert set(DATASETS) == {"digits", "mnist", "nsl-kdd", "kddcup99", "tuandromd"}
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert callable(spec.loader)
        assert spec.description and "\n" not in spec.description
        assert spec.input_shape
    assert DATASETS["digits"].needs_path is False
    assert all(DATASETS[n].needs_path for n in ("mnist", "nsl-kdd", "kddcup99", "tuandromd"))


def test_load_digits_by_name() -> None:
    ds = load("digits", seed=3)
    assert isinstance(ds, Dataset)
    assert torch.equal(ds.y_test, digits(seed=3).y_test)


def test_load_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar10'.*digits.*nsl-kdd.*tuandromd"):
        load("cifar10")


def test_load_missing_path() -> None:
    with pytest.raises(ValueError, match=r"'nsl-kdd' needs a path"):
        load("nsl-kdd")


def test_load_path_for_embedded_dataset() -> None:
    with pytest.raises(ValueError, match=r"'digits' is embedded and takes no path"):
        load("digits", "/tmp")
