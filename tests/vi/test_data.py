"""Data loaders: the digits fallback, and a clear DataFileError for every way the MNIST file can
be wrong."""

import numpy as np
import pytest
import torch

from scoregrad.vi import DataFileError
from scoregrad.vi.data import load_binarized_digits, load_binarized_mnist, load_dataset


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_good_file_loads(tmp_path):
    rng = np.random.default_rng(0)
    arr = lambda n: (rng.random((n, 784)) < 0.2).astype(np.uint8)
    p = _write(tmp_path / "m.npz", train=arr(20), valid=arr(5), test=arr(6))
    d = load_binarized_mnist(p)
    assert d.train.shape == (20, 784) and d.test.shape == (6, 784) and d.valid.shape == (5, 784)
    assert d.train.dtype == torch.float32 and d.dim == 784


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="not found.*omit the data path"):
        load_binarized_mnist(tmp_path / "nope.npz")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(DataFileError, match="is a directory"):
        load_binarized_mnist(tmp_path)


def test_not_an_npz(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(DataFileError, match="not a readable .npz"):
        load_binarized_mnist(p)


def test_truncated_npz(tmp_path):
    p = _write(tmp_path / "m.npz", train=np.zeros((10, 784), np.uint8), test=np.zeros((3, 784)))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match="not a readable .npz"):
        load_binarized_mnist(p)


def test_missing_split(tmp_path):
    p = _write(tmp_path / "m.npz", train=np.zeros((10, 784), np.uint8))
    with pytest.raises(DataFileError, match=r"no \['test'\]"):
        load_binarized_mnist(p)


def test_wrong_shape(tmp_path):
    p = _write(
        tmp_path / "m.npz",
        train=np.zeros((10, 28, 28), np.uint8),
        test=np.zeros((3, 784), np.uint8),
    )
    with pytest.raises(DataFileError, match=r"shape \(10, 28, 28\)"):
        load_binarized_mnist(p)


def test_not_binary(tmp_path):
    p = _write(tmp_path / "m.npz", train=np.full((10, 784), 0.5), test=np.zeros((3, 784), np.uint8))
    with pytest.raises(DataFileError, match="only 0 and 1"):
        load_binarized_mnist(p)


def test_digits_fallback():
    d = load_dataset(None)
    assert d.name == "binarized-digits" and d.dim == 64
    assert torch.equal(d.train, load_binarized_digits().train)  # fixed split
    assert set(d.train.unique().tolist()) == {0.0, 1.0}
