"""Offline-first data for the course.

* :func:`fashion_mnist` reads the standard IDX ``.gz`` files from ``$DLBOOK_DATA/fashion-mnist``,
  then from Debian's ``dataset-fashion-mnist`` package, and only then downloads them (once, into
  ``$DLBOOK_DATA`` or ``~/.cache/dlbook``).  Every file is checked against the SHA-256 of its
  *decompressed* content, so a re-compressed copy (Debian's) and the official one both pass,
  while a corrupt or foreign file is refused with a message that says how to fix it.
* :func:`digits` is scikit-learn's 1,797 real 8×8 handwritten digits (bundled, offline).
* :func:`photo` returns a bundled scikit-image photo as floats in [0, 1].
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from dlbook.idx import IDXError, parse_idx

__all__ = ["DataUnavailable", "FASHION_MNIST_CLASSES", "IDXError", "digits", "fashion_mnist", "photo"]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_PACKAGE = "dataset-fashion-mnist"
# SHA-256 of the decompressed IDX bytes (the same whoever gzipped the file).
_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte.gz",
                         "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    ("train", "labels"): ("train-labels-idx1-ubyte.gz",
                         "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    ("test", "images"): ("t10k-images-idx3-ubyte.gz",
                         "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte.gz",
                         "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}


class DataUnavailable(RuntimeError):
    """The data is neither on disk nor downloadable; the message says how to get it."""


def _cache_dir() -> Path:
    root = os.environ.get("DLBOOK_DATA")
    return Path(root) if root else Path.home() / ".cache" / "dlbook"


def _fetch(url: str, target: Path) -> None:
    """Download ``url`` to ``target`` atomically (tests replace this function)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp, \
            urllib.request.urlopen(url, timeout=30) as response:
        shutil.copyfileobj(response, tmp)
    os.replace(tmp.name, target)


def _load_checked(path: Path, sha256: str) -> np.ndarray:
    import gzip

    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as err:
        raise IDXError(f"{path} is not a complete gzip file ({err}); delete it so it is fetched again") from None
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise IDXError(f"{path} does not have the expected content (SHA-256 mismatch): the file is "
                       "corrupt or not Fashion-MNIST; delete it so it is fetched again")
    return parse_idx(raw, str(path))


def _locate(name: str) -> Path:
    """Return the first existing copy of ``name``, downloading it if there is none."""
    candidates = [_cache_dir() / "fashion-mnist" / name, SYSTEM_DIR / name]
    for path in candidates:
        if path.is_file():
            return path
    target = candidates[0]
    try:
        _fetch(FASHION_MNIST_URL + name, target)
    except (OSError, urllib.error.URLError) as err:
        raise DataUnavailable(
            f"Fashion-MNIST file {name} is not on this machine and could not be downloaded ({err}).\n"
            f"Fix: on Debian/Ubuntu run `sudo apt-get install {APT_PACKAGE}`; elsewhere, on a machine "
            f"with internet, run `python -c \"from dlbook import data; data.fashion_mnist()\"` or download "
            f"{FASHION_MNIST_URL}{name} into {target.parent} (or set DLBOOK_DATA)."
        ) from None
    return target


def fashion_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)``: uint8 ``(n, 28, 28)`` and int64 ``(n,)`` for ``train`` or ``test``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    arrays = []
    for kind in ("images", "labels"):
        name, sha256 = _FILES[(split, kind)]
        arrays.append(_load_checked(_locate(name), sha256))
    images, labels = arrays
    if len(images) != len(labels):
        raise IDXError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images, labels.astype(np.int64)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """Return scikit-learn's handwritten digits: float32 images ``(1797, 8, 8)`` in [0, 1], labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field", "brick", "moon", "text")


def photo(name: str = "camera", gray: bool = False, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Return a bundled scikit-image photo as float32 in [0, 1], ``(H, W)`` or ``(H, W, 3)``.

    ``gray=True`` converts colour photos to luminance; ``size`` (an int for a square, or
    ``(height, width)``) resizes with anti-aliasing.
    """
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.transform import resize

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {', '.join(PHOTOS)}")
    image = getattr(skimage.data, name)().astype(np.float32) / 255.0
    if gray and image.ndim == 3:
        image = rgb2gray(image)
    if size is not None:
        shape = (size, size) if isinstance(size, int) else tuple(size)
        image = resize(image, shape + image.shape[2:], anti_aliasing=True)
    return image.astype(np.float32)
