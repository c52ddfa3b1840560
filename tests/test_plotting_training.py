"""Plotting helpers draw what they are given; the training loop learns and records history."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from dlbook import plotting


def test_image_grid_titles_and_blank_cells() -> None:
    images = [np.random.default_rng(i).random((8, 8)) for i in range(5)]
    fig = plotting.show_images(images, [f"#{i}" for i in range(5)], ncols=3)
    axes = fig.axes
    assert len(axes) == 6 and [a.get_title() for a in axes[:5]] == [f"#{i}" for i in range(5)]
    assert not axes[5].axison  # the unused cell is hidden
    rgb_first = np.zeros((3, 6, 6))
    assert plotting.show_images([rgb_first]).axes[0].images[0].get_array().shape == (6, 6, 3)


def test_kernels_written_in_and_feature_maps_channels_last() -> None:
    fig = plotting.show_kernels([np.array([[1, 0, -1]] * 3)])
    assert len(fig.axes[0].texts) == 9
    maps = np.zeros((1, 30, 40, 4))  # a batch of one, (H, W, C) as Keras returns it
    shown = [a for a in plotting.show_feature_maps(maps, channels_last=True).axes if a.images]
    assert len(shown) == 4 and shown[0].images[0].get_array().shape == (30, 40)
    assert len([a for a in plotting.show_feature_maps(np.zeros((12, 5, 5))).axes if a.images]) == 12


def test_matrix_and_confusion_matrix_values() -> None:
    fig = plotting.show_matrix(np.array([[10, 3], [9, 18]]))
    assert [t.get_text() for t in fig.axes[0].texts] == ["10", "3", "9", "18"]
    fig = plotting.confusion_matrix_plot([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b"])
    assert fig.axes[0].get_title() == "accuracy 75.0%"
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["0.50", "0.50", "1.00"]


def test_fit_learns_and_history_plots() -> None:
    torch = pytest.importorskip("torch")
    from dlbook import seed_everything, training

    seed_everything(0)
    x = torch.randn(512, 2)
    y = (x[:, 0] * x[:, 1] > 0).long()  # XOR-like: needs the hidden layer
    model = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    before = training.evaluate(model, (x, y))["accuracy"]
    history = training.fit(model, (x, y), epochs=30, batch_size=64, validation=(x, y), progress=False,
                           optimizer=torch.optim.Adam(model.parameters(), lr=1e-2))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history["loss"]) == 30 and history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > max(0.9, before)
    assert training.predict(model, x).shape == (512, 2)
    fig = plotting.plot_history(history)
    assert [a.get_ylabel() for a in fig.axes] == ["loss", "accuracy"]
    assert len(fig.axes[0].lines) == 2


def test_fit_accepts_a_dataloader() -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    from dlbook import training

    x, y = torch.randn(64, 3), torch.randn(64, 1)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    history = training.fit(torch.nn.Linear(3, 1), loader, epochs=2, loss_fn=torch.nn.functional.mse_loss,
                           progress=False)
    assert list(history.history) == ["loss"] and len(history["loss"]) == 2


def test_scheduler_steps_every_batch_and_augment_sees_every_batch() -> None:
    torch = pytest.importorskip("torch")
    from dlbook import training

    x, y = torch.randn(100, 1, 2, 3), torch.randint(0, 2, (100,))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    seen = []
    training.fit(model, (x, y), epochs=2, batch_size=32, optimizer=optimizer, scheduler=scheduler,
                 augment=lambda b: seen.append(len(b)) or b, progress=False)
    assert seen == [32, 32, 32, 4] * 2
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 8)
    flipped = training.random_hflip(torch.arange(6.0).reshape(1, 1, 2, 3).repeat(64, 1, 1, 1))
    mirrored = (flipped[:, 0, 0, 0] == 2).sum()
    assert 0 < mirrored < 64 and torch.equal(flipped[flipped[:, 0, 0, 0] == 2][0, 0, 0], torch.tensor([2.0, 1, 0]))
