"""Augmentations: label-moving ones move the target by exactly the right amount (a planted
event), generic ones come from braindecode by name, and training stays reproducible."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from eegattn.training.augment import parse_augment, resample_crops
from eegattn.training.estimator import EEGAttentionRegressor

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
SFREQ = 100.0
CONTEXT_START = 0.3  # windows cut +0.3 .. +2.7 s after the stimulus: 240 samples
ANCHOR = 20  # the exact +0.5 s window starts 20 samples in


class RampSpy(nn.Module):
    """Records what training feeds it and checks it in its criterion: channel 0 is a ramp
    crossing zero at the response time, so the crossing inside a crop says which target the
    crop must carry: 0.5 s + crossing / sfreq."""

    checked: list = []

    def __init__(self, n_chans, n_outputs, n_times, sfreq):
        super().__init__()
        self.linear = nn.Linear(n_chans, n_outputs)
        self.last_x = None

    def forward(self, x):
        self.last_x = x.detach()
        return self.linear(x.mean(-1) * 1e4)

    def loss_criterion(self):
        return self._criterion

    def _criterion(self, output, y):
        ramp = self.last_x[:, 0, :].numpy().astype(np.float64)  # (b, crop)
        i = np.argmax(ramp >= 0, axis=1)  # first sample at or past the crossing
        left, right = ramp[np.arange(len(i)), i - 1], ramp[np.arange(len(i)), i]
        crossing = (i - 1) + (-left) / (right - left)  # linear: exact for a ramp
        RampSpy.checked.append(np.abs(0.5 + crossing / SFREQ - y.numpy()))
        return torch.mean((output[:, 0] - y) ** 2)


def _ramp_windows(n=48, seed=0):
    rng = np.random.default_rng(seed)
    rt = rng.uniform(0.8, 1.5, n)  # inside the window, far enough from both ends
    t = CONTEXT_START + np.arange(240) / SFREQ  # (240,) seconds after the stimulus
    X = rng.normal(size=(n, 4, 240)) * 1e-6
    X[:, 0, :] = (t[None, :] - rt[:, None]) * 1e-5  # crosses zero at the response time
    return X.astype(np.float32), rt.astype(np.float32)


@pytest.mark.parametrize("augment", [["time_shift"], ["time_scale"],
                                     ["time_shift", "time_scale"]])
def test_label_moving_augmentation_moves_the_target_exactly(augment):
    X, y = _ramp_windows()
    RampSpy.checked = []
    est = EEGAttentionRegressor(RampSpy, max_epochs=2, batch_size=16, valid_fraction=0.0,
                                early_stopping=False, crop_n_times=200, crop_anchor=ANCHOR,
                                augment=augment, init_output_bias=False, verbose=0)
    est.fit(X, y)
    errors = np.concatenate(RampSpy.checked)
    assert len(errors) == 2 * 48
    assert errors.max() < 1e-4  # seconds: the target moved exactly with the signal
    # and the augmentation did move things (else the check above would be trivial)
    spread = _moved_targets(est, X, y, augment)
    assert spread > 0.01


def _moved_targets(est, X, y, augment):
    """The largest target change the loop applied in one epoch (seconds)."""
    from eegattn.training.loop import LoopSettings, TrainingLoop

    settings = LoopSettings(max_epochs=1, batch_size=16, lr=1e-3, weight_decay=0.0,
                            early_stopping=False, augment=parse_augment(augment),
                            crop_anchor=ANCHOR, sfreq=SFREQ)
    loop = TrainingLoop(settings, est.model_, X, y, np.arange(len(y)), np.arange(0),
                        crop=200, seed=0, device=torch.device("cpu"), fingerprint={})
    loop._start_epoch()
    _, moved = loop._batch(loop.order[:16], loop.offsets[:16],
                           None if loop.scales is None else loop.scales[:16])
    return float(np.abs(moved.numpy() - y[loop.order[:16]]).max())


def test_without_augmentation_the_anchor_reads_the_exact_window():
    X, y = _ramp_windows()
    RampSpy.checked = []
    est = EEGAttentionRegressor(RampSpy, max_epochs=1, batch_size=16, valid_fraction=0.0,
                                early_stopping=False, crop_n_times=200, crop_anchor=ANCHOR,
                                init_output_bias=False, verbose=0)
    est.fit(X, y)
    assert np.concatenate(RampSpy.checked).max() < 1e-4
    # predict reads the exact window too: the same as feeding the +0.5 .. +2.5 s slice
    exact = X[:, :, ANCHOR:ANCHOR + 200]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = est.predict(X)
    est.model_.last_x = None
    b = est.model_(torch.from_numpy(exact)).detach().numpy()[:, 0]
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_resample_crops_without_scale_is_a_plain_crop_and_scales_a_ramp():
    X = np.arange(2 * 1 * 30, dtype=np.float32).reshape(2, 1, 30)
    out = resample_crops(X, np.array([0, 5]), 10, None)
    np.testing.assert_array_equal(out[1, 0], np.arange(35, 45))
    ramp = np.tile(np.arange(30, dtype=np.float32), (1, 1, 1))
    stretched = resample_crops(ramp, np.array([4]), 10, np.array([2.0]))
    np.testing.assert_allclose(stretched[0, 0], 4 + np.arange(10) / 2.0)


@pytest.mark.parametrize("name", ["channels_dropout", "gaussian_noise", "smooth_time_mask",
                                  "mixup"])
def test_generic_augmentations_train_and_repeat_exactly(name):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(40, 4, 100)) * 2e-5).astype(np.float32)
    y = rng.normal(1.5, 0.2, 40).astype(np.float32)

    class Tiny(nn.Module):
        def __init__(self, n_chans, n_outputs, n_times, sfreq):
            super().__init__()
            self.linear = nn.Linear(n_chans, n_outputs)

        def forward(self, x):
            return self.linear(x.std(-1) * 1e5)

    def fit():
        return EEGAttentionRegressor(Tiny, max_epochs=2, batch_size=8, valid_fraction=0.0,
                                     early_stopping=False, augment=[name], verbose=0).fit(X, y)

    a, b = fit(), fit()
    plain = EEGAttentionRegressor(Tiny, max_epochs=2, batch_size=8, valid_fraction=0.0,
                                  early_stopping=False, verbose=0).fit(X, y)
    for key, value in a.model_.state_dict().items():
        assert torch.equal(value, b.model_.state_dict()[key])  # seeded per step
    assert any(not torch.equal(v, plain.model_.state_dict()[k])
               for k, v in a.model_.state_dict().items())  # the augmentation did something


@pytest.mark.parametrize("augment, message", [
    (["flip_time"], "'augment' parameter"),
    ({"time_scale": {"max_scale": 0.9}}, "'max_scale' parameter"),
    ({"gaussian_noise": {"sigma": 1}}, "unknown option"),
])
def test_bad_augmentations_fail_before_training(augment, message):
    X, y = _ramp_windows(n=8)
    est = EEGAttentionRegressor(RampSpy, augment=augment, crop_n_times=200, crop_anchor=20,
                                verbose=0)
    with pytest.raises(ValueError, match=message):
        est.fit(X, y)


def test_label_moving_augmentation_needs_an_anchor():
    X, y = _ramp_windows(n=8)
    with pytest.raises(ValueError, match="needs windows cut with context"):
        EEGAttentionRegressor(RampSpy, augment=["time_shift"], crop_n_times=200,
                              verbose=0).fit(X, y)
    with pytest.raises(ValueError, match="runs past the windows"):
        EEGAttentionRegressor(RampSpy, crop_n_times=200, crop_anchor=50, verbose=0).fit(X, y)
