"""Device choice and reproducibility, the same way on every page."""
from __future__ import annotations

import os
import random
import sys

import numpy as np


def device(verbose: bool = True) -> "torch.device":  # noqa: F821 - torch is optional
    """Return the best PyTorch device (cuda, then mps, then cpu) and say which one it is."""
    import torch

    if torch.cuda.is_available():
        chosen = torch.device("cuda")
        detail = torch.cuda.get_device_name(0)
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        chosen, detail = torch.device("mps"), "Apple GPU"
    else:
        chosen, detail = torch.device("cpu"), f"{os.cpu_count()} CPU cores"
    required = os.environ.get("DLBOOK_REQUIRE_DEVICE")
    if required and chosen.type != required:
        # GPU runners set this so that a silent fallback to the CPU fails the job.
        raise RuntimeError(f"DLBOOK_REQUIRE_DEVICE={required} but only {chosen.type} is available")
    if verbose:
        print(f"Using device: {chosen.type} ({detail})")
    return chosen


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed Python, NumPy, and PyTorch and TensorFlow when the notebook has imported them.

    With ``deterministic=True`` the frameworks are asked for deterministic
    kernels where they offer them; PyTorch only warns (never fails) for an
    operation that has no deterministic implementation.  Call this after the
    framework imports.
    """
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    # A framework the notebook has not imported is not imported here: a Keras notebook should
    # not pay for (or report) PyTorch, nor the other way round.
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
        if deterministic:
            # cuBLAS needs this workspace setting for deterministic matmuls on CUDA.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
    if "tensorflow" in sys.modules or "keras" in sys.modules:
        # Importing TensorFlow just to seed it costs seconds, so only seed it when the page uses it.
        import tensorflow as tf

        tf.random.set_seed(seed)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        import keras

        keras.utils.set_random_seed(seed)


def run_report() -> dict[str, str]:
    """What produced a page's outputs: profile, device and the framework versions in use.

    Only frameworks the notebook has imported are reported (and none is imported here).
    """
    import platform

    from dlbook.profile import profile

    report = {"profile": profile(), "python": platform.python_version(),
              "device": f"CPU ({os.cpu_count()} cores)"}
    if "torch" in sys.modules:
        import torch

        report["PyTorch"] = torch.__version__
        if torch.cuda.is_available():
            report["device"] = f"GPU ({torch.cuda.get_device_name(0)})"
    if "keras" in sys.modules:
        import keras

        report["Keras"] = keras.__version__
        if "tensorflow" in sys.modules:
            import tensorflow as tf

            report["TensorFlow"] = tf.__version__
            gpus = tf.config.list_logical_devices("GPU")
            if gpus:
                report["device"] = f"GPU ({gpus[0].name})"
    return report
