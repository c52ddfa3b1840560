"""Chapter 3's Grad-CAM: PyTorch and Keras agree on the same weights, and match captum and CAM.

The network and the two Grad-CAM functions are those of ``book/03-cam/index.md`` (the page
cannot hold this check: each framework's notebook runs on its own).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from torch import nn  # noqa: E402

from dlbook.shapes import make_shapes  # noqa: E402


class GapCNN(nn.Module):
    def __init__(self, widths=(8, 16, 32), n_classes=3, in_channels=1):
        super().__init__()
        a, b, c = widths
        layers, previous = OrderedDict(), in_channels
        for i, width in enumerate((a, a, b, b, c), start=1):
            layers[f"conv{i}"] = nn.Conv2d(previous, width, 3, padding=1)
            layers[f"relu{i}"] = nn.ReLU()
            if i in (2, 4):
                layers[f"pool{i // 2}"] = nn.MaxPool2d(2)
            previous = width
        self.features = nn.Sequential(layers)
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def gap_cnn(widths=(8, 16, 32), n_classes=3, size=32):
    a, b, c = widths
    inputs = keras.Input((size, size, 1))
    h = inputs
    for i, width in enumerate((a, a, b, b, c), start=1):
        h = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}")(h)
        if i in (2, 4):
            h = keras.layers.MaxPooling2D(2, name=f"pool{i // 2}")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inputs, keras.layers.Dense(n_classes, name="fc")(h))


def gradcam_torch(model, layer, x, class_index):
    caught = {}
    hook = layer.register_forward_hook(lambda module, inputs, output: caught.update(A=output))
    model.eval()
    try:
        scores = model(x)
    finally:
        hook.remove()
    class_index = torch.as_tensor(class_index).reshape(-1).expand(len(x))
    (grads,) = torch.autograd.grad(scores.gather(1, class_index[:, None]).sum(), caught["A"])
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    return torch.relu((alpha * caught["A"]).sum(dim=1)).detach().numpy()


def gradcam_keras(model, layer_name, x, class_index):
    grad_model = keras.Model(model.input, [model.get_layer(layer_name).output, model.output])
    with tf.GradientTape() as tape:
        A, scores = grad_model(tf.convert_to_tensor(x), training=False)
        index = tf.broadcast_to(tf.reshape(tf.cast(class_index, tf.int64), [-1]), [len(x)])
        chosen = tf.gather(scores, index, batch_dims=1)
    alpha = tf.reduce_mean(tape.gradient(chosen, A), axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(alpha * A, axis=-1)).numpy()


def copy_weights(source: nn.Module, target) -> None:
    """PyTorch -> Keras: conv kernels OIHW -> HWIO, dense (out, in) -> (in, out)."""
    for i in range(1, 6):
        conv = getattr(source.features, f"conv{i}")
        target.get_layer(f"conv{i}").set_weights([conv.weight.detach().permute(2, 3, 1, 0).numpy(),
                                                  conv.bias.detach().numpy()])
    target.get_layer("fc").set_weights([source.fc.weight.detach().T.numpy(), source.fc.bias.detach().numpy()])


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    tmodel = GapCNN().eval()
    kmodel = gap_cnn()
    copy_weights(tmodel, kmodel)
    images, labels, _, _ = make_shapes(6, size=32, seed=7)
    return tmodel, kmodel, images, labels


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def test_logits_agree(pair) -> None:
    tmodel, kmodel, images, _ = pair
    with torch.no_grad():
        t_logits = tmodel(torch.from_numpy(images[:, None])).numpy()
    k_logits = kmodel(images[..., None], training=False).numpy()
    np.testing.assert_allclose(k_logits, t_logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer", ["conv5", "conv4", "conv2"])
def test_gradcam_agrees_across_frameworks(pair, layer) -> None:
    tmodel, kmodel, images, labels = pair
    relu = getattr(tmodel.features, layer.replace("conv", "relu"))
    t_maps = gradcam_torch(tmodel, relu, torch.from_numpy(images[:, None]), torch.from_numpy(labels))
    k_maps = gradcam_keras(kmodel, layer, images[..., None], labels)
    assert t_maps.shape == k_maps.shape == (6,) + {"conv5": (8, 8), "conv4": (16, 16), "conv2": (32, 32)}[layer]
    assert np.abs(t_maps).max() > 0, "an all-zero map makes the comparison meaningless"
    assert _rel(k_maps, t_maps) < 1e-4


def test_torch_gradcam_matches_captum(pair) -> None:
    from captum.attr import LayerGradCam

    tmodel, _, images, labels = pair
    x = torch.from_numpy(images[:, None])
    ours = gradcam_torch(tmodel, tmodel.features.relu4, x, torch.from_numpy(labels))
    theirs = LayerGradCam(tmodel, tmodel.features.relu4).attribute(
        x, target=torch.from_numpy(labels), relu_attributions=True).squeeze(1).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


def test_last_layer_gradcam_is_relu_cam_over_z(pair) -> None:
    tmodel, kmodel, images, labels = pair
    k_maps = gradcam_keras(kmodel, "conv5", images[..., None], labels)
    features = keras.Model(kmodel.input, kmodel.get_layer("conv5").output)(images[..., None]).numpy()
    weights = kmodel.get_layer("fc").weights[0].numpy()            # (K, classes)
    cams = np.einsum("nhwk,kn->nhw", features, weights[:, labels])
    z = cams.shape[1] * cams.shape[2]
    assert _rel(k_maps, np.maximum(cams, 0) / z) < 1e-5
