"""Progress bars: widgets for people running a notebook, plain text in the built book.

A tqdm widget is JavaScript state that renders nothing on a static (or offline) page, so the
book build sets ``DLBOOK_PROGRESS=text`` and progress is then reported by the lines the
training code prints (one per epoch) instead of by bars.
"""
from __future__ import annotations

import os
from typing import Any


def text_only() -> bool:
    """True when progress must be plain text (set by the book build)."""
    return os.environ.get("DLBOOK_PROGRESS", "").strip().lower() == "text"


def tqdm_class() -> Any:
    """The tqdm class to use: ``tqdm.auto`` interactively, a disabled bar in the book build."""
    from tqdm.auto import tqdm

    if not text_only():
        return tqdm

    def disabled(*args: Any, **kwargs: Any) -> Any:
        kwargs["disable"] = True   # even where the caller passes disable=False
        return tqdm(*args, **kwargs)

    return disabled


def keras_callbacks() -> list:
    """Callbacks for ``model.fit(..., verbose=0)``: tqdm bars, or one printed line per epoch."""
    if not text_only():
        from tqdm.keras import TqdmCallback

        return [TqdmCallback(verbose=1)]
    import keras

    class EpochLines(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            total = self.params.get("epochs", "?")
            metrics = ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items())
            print(f"epoch {epoch + 1}/{total}: {metrics}")

    return [EpochLines()]
