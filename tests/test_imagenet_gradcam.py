"""Chapter 3's ImageNet page: Grad-CAM on EfficientNet-Lite0 gives the same maps in PyTorch and Keras.

The two Grad-CAM functions are those of ``book/03-cam/imagenet.md``; the page cannot hold this
check, since each framework's notebook runs on its own.
"""
from __future__ import annotations

import numpy as np
import pytest

from dlbook import efficientnet_lite as lite

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from torch.nn import functional as F  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    """The weights, both models (built once) and the page's cat and rocket photos."""
    try:
        weights = lite.state_dict()
    except lite.WeightsUnavailable as err:
        pytest.skip(str(err))
    from dlbook import data

    images = np.concatenate([lite.preprocess(data.photo(name)) for name in ("chelsea", "rocket")])
    return weights, lite.torch_model(weights), lite.keras_model(weights), images


def torch_gradcam(model, x, class_index, probability=False):
    def features(x):
        h = F.relu6(model._bn0(model._conv_stem(x)))
        for block in model._blocks:
            h = block(h)
        return F.relu6(model._bn1(model._conv_head(h)))

    with torch.no_grad():
        A = features(x)
    A.requires_grad_(True)
    scores = model._fc(model._dropout(A.mean(dim=(2, 3))))
    if probability:
        scores = scores.softmax(dim=1)
    index = torch.as_tensor(class_index).reshape(-1)
    (grads,) = torch.autograd.grad(scores.gather(1, index[:, None]).sum(), A)
    maps = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * A).sum(dim=1)).detach().numpy()
    return maps, A.detach().permute(0, 2, 3, 1).numpy(), scores.detach().numpy()


def keras_gradcam(model, x, class_index, probability=False):
    grad_model = keras.Model(model.input, [model.get_layer("relu_head").output, model.output])
    index = tf.constant(np.asarray(class_index).reshape(-1), dtype=tf.int64)
    with tf.GradientTape() as tape:
        A, scores = grad_model(tf.convert_to_tensor(x), training=False)
        if probability:
            scores = tf.nn.softmax(scores)
        chosen = tf.gather(scores, index, batch_dims=1)
    alpha = tf.reduce_mean(tape.gradient(chosen, A), axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(alpha * A, axis=-1)).numpy()


def test_split_model_and_cam_identity(setup) -> None:
    weights, model, _, images = setup
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    with torch.no_grad():
        logits = model(x).numpy()
    top = logits.argmax(axis=1)
    maps, A, scores = torch_gradcam(model, x, top)
    np.testing.assert_allclose(scores, logits, atol=1e-5)            # the split is faithful
    # With pooling + one dense layer after A, Grad-CAM is ReLU(CAM) / Z.
    cams = np.einsum("nhwk,nk->nhw", A, weights["_fc.weight"][top])
    np.testing.assert_allclose(maps, np.maximum(cams, 0) / (A.shape[1] * A.shape[2]),
                               atol=1e-5 * maps.max())
    assert maps.shape == (len(images), 7, 7)


@pytest.mark.parametrize("probability", [False, True])
def test_torch_and_keras_gradcam_agree(setup, probability: bool) -> None:
    _, torch_model, keras_model, images = setup
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    with torch.no_grad():
        top = torch_model(x).numpy().argmax(axis=1)
    if lite.imagenet_classes()[0] != "class 0":                      # names installed
        assert [lite.imagenet_classes()[i] for i in top] == ["Egyptian cat", "drilling platform"]
    for classes in (top, np.array([282, 657])):          # 'tiger cat', 'missile': the page's second classes
        mine = torch_gradcam(torch_model, x, classes, probability)[0]
        theirs = keras_gradcam(keras_model, images, classes, probability)
        scale = float(np.abs(mine).max())
        assert scale > 0
        assert float(np.abs(mine - theirs).max()) < 1e-3 * scale
