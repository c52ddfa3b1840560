"""Offline data loaders: IDX parsing, Fashion-MNIST lookup order, checksums, clear errors."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from dlbook import data
from dlbook.idx import IDXError, parse_idx, read_idx, write_idx


@pytest.fixture
def tiny_fashion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """A 5-image Fashion-MNIST look-alike in $DLBOOK_DATA, registered with its own checksums."""
    rng = np.random.default_rng(0)
    arrays = {"images": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "labels": np.array([0, 3, 9, 3, 1], dtype=np.uint8)}
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    files = {}
    for (split, kind), (name, _) in data._FILES.items():
        write_idx(folder / name, arrays[kind])
        files[(split, kind)] = (name, hashlib.sha256(gzip.decompress((folder / name).read_bytes())).hexdigest())
    monkeypatch.setenv("DLBOOK_DATA", str(tmp_path))
    monkeypatch.setattr(data, "_FILES", files)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "no-system-copy")
    return arrays


def _no_network(url: str, target: Path) -> None:
    raise OSError("network is unreachable")


def test_idx_round_trip(tmp_path: Path) -> None:
    for dtype in (np.uint8, np.int16, np.float32):
        array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
        for name in ("a.idx", "a.idx.gz"):
            write_idx(tmp_path / name, array)
            back = read_idx(tmp_path / name)
            assert back.dtype == array.dtype and np.array_equal(back, array)


def test_idx_rejects_bad_magic_and_truncation(tmp_path: Path) -> None:
    with pytest.raises(IDXError, match="not an IDX file"):
        parse_idx(b"<html>not found</html>", "page.html")
    raw = bytes([0, 0, 8, 1]) + np.uint32(10).byteswap().tobytes() + bytes(7)
    with pytest.raises(IDXError, match="truncated or corrupt"):
        parse_idx(raw, "short")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(raw + bytes(3))[:-6])
    with pytest.raises(IDXError, match="not a complete gzip file"):
        read_idx(tmp_path / "cut.gz")


def test_reads_the_data_folder_first(tiny_fashion: dict) -> None:
    images, labels = data.fashion_mnist("test")
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, tiny_fashion["images"])
    assert labels.dtype == np.int64 and labels.tolist() == [0, 3, 9, 3, 1]


def test_checksum_mismatch_is_refused(tiny_fashion: dict, tmp_path: Path) -> None:
    name = data._FILES[("train", "images")][0]
    write_idx(tmp_path / "fashion-mnist" / name, tiny_fashion["images"][::-1])  # valid IDX, other content
    with pytest.raises(IDXError, match="SHA-256 mismatch") as err:
        data.fashion_mnist("train")
    assert name in str(err.value) and "delete it" in str(err.value)


def test_truncated_gzip_is_refused(tiny_fashion: dict, tmp_path: Path) -> None:
    path = tmp_path / "fashion-mnist" / data._FILES[("test", "labels")][0]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IDXError, match="not a complete gzip file"):
        data.fashion_mnist("test")


def test_missing_offline_names_the_package_and_the_command(tiny_fashion: dict, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fashion-mnist" / data._FILES[("train", "labels")][0]).unlink()
    monkeypatch.setattr(data, "_fetch", _no_network)
    with pytest.raises(data.DataUnavailable) as err:
        data.fashion_mnist("train")
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "data.fashion_mnist()" in message and "network is unreachable" in message


def test_download_lands_in_the_cache_and_is_checked(tiny_fashion: dict, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fashion-mnist" / data._FILES[("test", "images")][0]
    payload = path.read_bytes()
    path.unlink()
    fetched: list[str] = []

    def fake_fetch(url: str, target: Path) -> None:
        fetched.append(url)
        target.write_bytes(payload)

    monkeypatch.setattr(data, "_fetch", fake_fetch)
    images, _ = data.fashion_mnist("test")
    assert fetched == [data.FASHION_MNIST_URL + path.name] and path.is_file()
    assert np.array_equal(images, tiny_fashion["images"])


def test_unknown_split() -> None:
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.fashion_mnist("validation")


@pytest.mark.skipif(not data.SYSTEM_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_the_real_test_split_from_debian() -> None:
    images, labels = data.fashion_mnist("test")
    assert images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == [1000] * 10


def test_digits_and_photos() -> None:
    images, labels = data.digits()
    assert images.shape == (1797, 8, 8) and images.min() >= 0 and images.max() <= 1
    assert set(labels.tolist()) == set(range(10))
    gray = data.photo("chelsea", gray=True, size=(32, 48))
    assert gray.shape == (32, 48) and gray.dtype == np.float32 and 0 <= gray.min() <= gray.max() <= 1
    assert data.photo("coffee").shape[2] == 3
    with pytest.raises(ValueError, match="unknown photo"):
        data.photo("lena")
