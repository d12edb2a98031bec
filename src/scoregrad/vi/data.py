"""Data for the discrete-latent models: statically binarised MNIST, or binarised scikit-learn digits.

``load_binarized_mnist(path)`` reads the standard statically binarised MNIST (Salakhutdinov &
Murray 2008; splits of Larochelle & Murray 2011) from an ``.npz`` with uint8 0/1 arrays
``train`` (50000 × 784), ``valid`` and ``test`` (10000 × 784 each), as used by the REBAR, RELAX,
ARM and DisARM papers. The file is read in place (never copied). Every way the file can be wrong
(missing, not an ``.npz``, missing split, wrong shape, values other than 0 and 1) raises a
``DataFileError`` naming the problem and the fix.

``load_binarized_digits()`` is the fallback that runs anywhere: scikit-learn's 1797 8×8 digits,
pixel intensities 0..16 thresholded at 8, split 1500 train / 297 test at a fixed permutation.

>>> d = load_binarized_digits()
>>> d.train.shape, d.test.shape, d.name
(torch.Size([1500, 64]), torch.Size([297, 64]), 'binarized-digits')
>>> sorted(d.train.unique().tolist())
[0.0, 1.0]
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DataFileError

__all__ = [
    "BinaryData",
    "load_binarized_mnist",
    "load_binarized_digits",
    "load_dataset",
    "subset",
    "DEFAULT_MNIST",
]

#: where the project keeps the shared copy (relative to the repository root's parent)
DEFAULT_MNIST = Path("../shared/data/binarized-mnist/binarized_mnist.npz")


@dataclass
class BinaryData:
    """Binary images as float tensors of 0/1, one row per image."""

    train: torch.Tensor
    test: torch.Tensor
    valid: torch.Tensor | None
    name: str

    @property
    def dim(self) -> int:
        return self.train.shape[1]


def _binary(arr: np.ndarray, key: str, path: Path, width: int | None) -> torch.Tensor:
    if arr.ndim != 2 or (width is not None and arr.shape[1] != width) or arr.shape[0] == 0:
        raise DataFileError(
            f"{path}: array {key!r} has shape {arr.shape}; expected (images, 784) rows of 28×28 "
            "pixels. Fix: point --data at the statically binarised MNIST .npz (train/valid/test "
            "arrays of shape (N, 784)), or omit it to use the built-in digits."
        )
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != np.bool_:
        raise DataFileError(f"{path}: array {key!r} has dtype {arr.dtype}, not numbers.")
    vals = np.unique(arr)
    if not np.all(np.isin(vals, (0, 1))):
        shown = vals[:8].tolist()
        raise DataFileError(
            f"{path}: array {key!r} holds values {shown}{' ...' if len(vals) > 8 else ''}, but "
            "binarised MNIST has only 0 and 1. Fix: binarise the images first (e.g. "
            "(x > 0.5).astype('uint8')), or use the statically binarised file."
        )
    return torch.as_tensor(arr.astype(np.float32))


def load_binarized_mnist(path: str | Path = DEFAULT_MNIST, dtype=torch.float32) -> BinaryData:
    """Load statically binarised MNIST from ``path`` (an .npz with train/valid/test)."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(
            f"binarised MNIST file not found at {path} (resolved: {path.resolve()}). Fix: pass "
            "the path of binarized_mnist.npz (the project keeps it at "
            f"{DEFAULT_MNIST}), or omit the data path to fall back to scikit-learn's digits."
        )
    if path.is_dir():
        raise DataFileError(
            f"{path} is a directory; pass the .npz file inside it (e.g. {path / 'binarized_mnist.npz'})."
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            missing = {"train", "test"} - keys
            if missing:
                raise DataFileError(
                    f"{path} has arrays {sorted(keys)} but no {sorted(missing)}. Fix: use the "
                    "binarised MNIST .npz with 'train', 'valid' and 'test' arrays."
                )
            train = _binary(f["train"], "train", path, 784)
            test = _binary(f["test"], "test", path, 784)
            valid = _binary(f["valid"], "valid", path, 784) if "valid" in keys else None
    except DataFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise DataFileError(
            f"{path} is not a readable .npz archive ({type(e).__name__}: {e}). Fix: point to the "
            "binarised MNIST .npz (numpy.savez of uint8 arrays train/valid/test); re-download or "
            "re-convert it if it is truncated."
        ) from e
    conv = lambda t: None if t is None else t.to(dtype)
    return BinaryData(conv(train), conv(test), conv(valid), "binarized-mnist")


def load_binarized_digits(seed: int = 0, dtype=torch.float32) -> BinaryData:
    """scikit-learn's 8×8 digits, binarised at intensity 8 of 16; 1500 train / 297 test."""
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "the digits fallback needs scikit-learn: pip install 'scoregrad[vi]', or pass the "
            "binarised MNIST file"
        ) from e
    x = load_digits().data >= 8
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.shape[0], generator=g)
    x = torch.as_tensor(x.astype(np.float32)).to(dtype)[perm]
    return BinaryData(x[:1500], x[1500:], None, "binarized-digits")


def subset(x: torch.Tensor, k: int | None, seed: int = 0) -> torch.Tensor:
    """k rows of x drawn without replacement at a fixed seed (all of x if k is None, 0 or >= its
    length). The MNIST files are not shuffled (the first test images are not typical of the
    whole test set), so evaluation subsets must be random, not the first k.

    >>> subset(torch.arange(10.0), 3).tolist()
    [4.0, 1.0, 7.0]
    """
    if not k or k >= x.shape[0]:
        return x
    g = torch.Generator().manual_seed(seed)
    return x[torch.randperm(x.shape[0], generator=g)[:k]]


def load_dataset(path: str | Path | None = None, dtype=torch.float32) -> BinaryData:
    """Binarised MNIST from ``path``, or the digits fallback when ``path`` is None."""
    if path is None:
        return load_binarized_digits(dtype=dtype)
    return load_binarized_mnist(path, dtype=dtype)
