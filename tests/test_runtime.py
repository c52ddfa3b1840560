"""dlbook's profile, device and seeding helpers."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import dlbook


@pytest.mark.parametrize(("env", "expected"), [
    ({"DLBOOK_PROFILE": "full", "CI": "true"}, "full"),
    ({"DLBOOK_PROFILE": "quick"}, "quick"),
    ({"DLBOOK_PROFILE": " Quick "}, "quick"),
    ({"CI": "true"}, "quick"),
])
def test_profile_from_environment(monkeypatch, env, expected) -> None:
    monkeypatch.setattr(sys.modules["dlbook.profile"], "nvidia_gpu_visible", lambda: True)
    monkeypatch.delenv("DLBOOK_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert dlbook.profile() == expected
    assert dlbook.by_profile(quick="q", full="f") == expected[0]


@pytest.mark.parametrize(("gpu", "expected"), [(True, "full"), (False, "quick")])
def test_without_settings_the_profile_follows_the_gpu(monkeypatch, gpu, expected) -> None:
    monkeypatch.delenv("DLBOOK_PROFILE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.modules["dlbook.profile"], "nvidia_gpu_visible", lambda: gpu)
    assert dlbook.profile() == expected


def test_unknown_profile_is_an_error(monkeypatch) -> None:
    monkeypatch.setenv("DLBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match="quick, full"):
        dlbook.profile()


def test_device_reports_its_choice(capsys) -> None:
    chosen = dlbook.device()
    assert isinstance(chosen, torch.device)
    assert f"Using device: {chosen.type}" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert chosen.type in {"cpu", "mps"}


def test_seed_everything_repeats_numpy_and_torch() -> None:
    def draw():
        dlbook.seed_everything(123)
        return np.random.rand(3), torch.rand(3).numpy()

    (a1, b1), (a2, b2) = draw(), draw()
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    dlbook.seed_everything(124)
    assert not np.array_equal(np.random.rand(3), a1)


def test_seed_everything_seeds_keras_when_imported() -> None:
    keras = pytest.importorskip("keras")

    def draw():
        dlbook.seed_everything(7)
        return keras.random.normal((4,)).numpy()

    np.testing.assert_array_equal(draw(), draw())


def test_required_device_refuses_a_fallback(monkeypatch) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv("DLBOOK_REQUIRE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="only cpu is available"):
        dlbook.device()
