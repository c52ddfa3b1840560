"""A small, readable PyTorch training loop with a progress bar and a history.

Where the data fits in memory it lives on the device as two tensors and batches are
index slices, with no ``DataLoader``: on a GPU this removes the per-batch copy from
host memory that otherwise dominates small networks.  A ``DataLoader`` works too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import torch
from torch import nn
from dlbook.progress import tqdm_class

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class History:
    """Per-epoch metrics, e.g. ``{"loss": [...], "accuracy": [...], "val_loss": [...]}``."""

    history: dict[str, list[float]] = field(default_factory=dict)

    def log(self, **values: float) -> None:
        for name, value in values.items():
            self.history.setdefault(name, []).append(float(value))

    def __getitem__(self, name: str) -> list[float]:
        return self.history[name]


def tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = False,
                   generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` mini-batches by slicing tensors where they already are (no copies to the device)."""
    n = len(x)
    order = torch.randperm(n, device=x.device, generator=generator) if shuffle else None
    for start in range(0, n, batch_size):
        index = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
        yield x[index], y[index]


def _as_batches(data: Batches | tuple[torch.Tensor, torch.Tensor], batch_size: int,
                shuffle: bool) -> Callable[[], Batches]:
    if isinstance(data, tuple):
        x, y = data
        return lambda: tensor_batches(x, y, batch_size, shuffle=shuffle)
    return lambda: data


def evaluate(model: nn.Module, data: Batches | tuple[torch.Tensor, torch.Tensor],
             loss_fn: Callable = nn.functional.cross_entropy, *, batch_size: int = 1024) -> dict[str, float]:
    """Mean loss and (for class scores) accuracy of ``model`` on ``data``."""
    device = next(model.parameters()).device
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for xb, yb in _as_batches(data, batch_size, False)():
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            total_loss += float(loss_fn(out, yb)) * len(xb)
            if out.ndim == 2 and yb.ndim == 1:
                correct += int((out.argmax(1) == yb).sum())
            count += len(xb)
    metrics = {"loss": total_loss / count}
    if correct or (out.ndim == 2 and yb.ndim == 1):
        metrics["accuracy"] = correct / count
    return metrics


def fit(model: nn.Module, train: Batches | tuple[torch.Tensor, torch.Tensor], *, epochs: int,
        optimizer: torch.optim.Optimizer | None = None, loss_fn: Callable = nn.functional.cross_entropy,
        batch_size: int = 128, validation: Batches | tuple[torch.Tensor, torch.Tensor] | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None, progress: bool = True) -> History:
    """Train ``model`` for ``epochs`` and return its :class:`History`.

    ``train`` and ``validation`` are either ``(x, y)`` tensors (batched here, shuffled each
    epoch for training) or any iterable of batches such as a ``DataLoader``.  Batches are
    moved to the model's device; tensors already there are not copied.  ``scheduler`` is
    stepped after every optimizer step (e.g. ``OneCycleLR``); ``augment`` transforms each
    training batch of inputs on the device (e.g. random flips).
    """
    device = next(model.parameters()).device
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = _as_batches(train, batch_size, True)
    steps = math.ceil(len(train[0]) / batch_size) if isinstance(train, tuple) else None
    history = History()
    for epoch in range(1, epochs + 1):
        model.train()
        seen, loss_sum, correct = 0, 0.0, 0
        bar = tqdm_class()(batches(), total=steps, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not progress)
        for xb, yb in bar:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            if augment is not None:
                xb = augment(xb)
            out = model(xb)
            loss = loss_fn(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            seen += len(xb)
            loss_sum += float(loss.detach()) * len(xb)
            if out.ndim == 2 and yb.ndim == 1:
                correct += int((out.argmax(1) == yb).sum())
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
        logs = {"loss": loss_sum / seen}
        if out.ndim == 2 and yb.ndim == 1:
            logs["accuracy"] = correct / seen
        if validation is not None:
            logs.update({f"val_{k}": v for k, v in evaluate(model, validation, loss_fn, batch_size=batch_size).items()})
        history.log(**logs)
        if progress:
            print(f"epoch {epoch}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    return history


def random_hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror each image of an (n, C, H, W) batch left-right with probability 1/2."""
    flip = torch.rand(len(x), device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """Model outputs for ``x`` (batched, no gradients), on the CPU."""
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
