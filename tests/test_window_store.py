"""The recording store under the window cache: indexed windows equal materialised ones,
shared recordings, keys, float16's error bound, lazy subsets, and the DataLoader path of the
training loop giving the same weights as in-process batches."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest

from eegattn.data import cache as cache_module
from eegattn.data.cache import load_challenge_windows
from eegattn.data.indexed import IndexedWindows

QUIET = dict(progress=False)
#: float16's unit roundoff: the documented bound of the relative error (docs/cache.md)
F16_BOUND = 2.0 ** -11


def _bytes(folder, pattern) -> int:
    return sum(p.stat().st_size for d in folder.glob(pattern) for p in d.rglob("*")
               if p.is_file())


@pytest.fixture(scope="module")
def store(tiny_root, tmp_path_factory):
    """Challenge-2 windows of the tiny release, cached float32 and float16."""
    cache = tmp_path_factory.mktemp("store")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN targets of the tiny release: skipped
        c2 = load_challenge_windows(2, root=tiny_root, cache_dir=cache / "f32", **QUIET)
        half = load_challenge_windows(2, root=tiny_root, cache_dir=cache / "f16",
                                      cache_dtype="float16", **QUIET)
    return cache, c2, half


@pytest.mark.parametrize("challenge", [1, 2])
def test_indexed_windows_equal_materialised_windows(tiny_root, tmp_path, challenge):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cached = load_challenge_windows(challenge, root=tiny_root, cache_dir=tmp_path, **QUIET)
        memory = load_challenge_windows(challenge, root=tiny_root, use_cache=False, **QUIET)
    assert isinstance(cached.X, IndexedWindows) and isinstance(memory.X, np.ndarray)
    assert cached.X.shape == memory.X.shape and cached.X.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(cached.X), memory.X)  # bit for bit
    np.testing.assert_array_equal(cached.y, memory.y)
    rows = np.array([3, 0, len(memory) - 1, 3])
    np.testing.assert_array_equal(cached.X[rows], memory.X[rows])
    np.testing.assert_array_equal(cached.X[2:7], memory.X[2:7])
    np.testing.assert_array_equal(cached.X[-1], memory.X[-1])
    np.testing.assert_array_equal(cached.X[1, :, 5:9], memory.X[1, :, 5:9])
    # subsets stay index tables over the same recordings, and pickle as paths
    sub = cached.subset(rows)
    assert isinstance(sub.X, IndexedWindows) and sub.X._sources == cached.X._sources
    np.testing.assert_array_equal(np.asarray(sub.X), memory.X[rows])
    clone = pickle.loads(pickle.dumps(sub.X))
    assert len(pickle.dumps(sub.X)) < 10_000  # no samples inside
    np.testing.assert_array_equal(np.asarray(clone), memory.X[rows])


def test_window_specs_share_the_recording_store(tiny_root, tmp_path):
    exact = load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, **QUIET)
    recordings = _bytes(tmp_path, "r-*")
    wide = load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path,
                                  shift_after_stimulus_s=0.3, window_s=2.4, **QUIET)
    assert wide.cache_key != exact.cache_key and wide.X.shape[2] == 240
    assert _bytes(tmp_path, "r-*") == recordings  # no recording stored twice
    assert set(wide.info["recordings"]) == set(exact.info["recordings"])
    # the windows with context hold the exact ones at sample 20
    np.testing.assert_array_equal(np.asarray(wide.X)[:, :, 20:220], np.asarray(exact.X))
    # the store is smaller than the windows materialised, and the index entries are tiny
    materialised = 4 * (np.prod(exact.X.shape) + np.prod(wide.X.shape))
    assert _bytes(tmp_path, "c1-*") < 0.02 * materialised


def test_recording_key_follows_preprocessing_recording_and_dtype(tiny_root):
    from eegattn.data import hbn
    from eegattn.data.preprocess import PreprocessConfig

    rec = hbn.discover_recordings(tiny_root, tasks="contrastChangeDetection")[0]
    row = cache_module.recording_fingerprint(rec)
    key = cache_module.recording_key(row, PreprocessConfig())[0]
    assert key == cache_module.recording_key(list(row), PreprocessConfig())[0]
    others = [
        cache_module.recording_key(row, PreprocessConfig(l_freq=1.0))[0],
        cache_module.recording_key(row, PreprocessConfig(), cache_dtype="float16")[0],
        cache_module.recording_key([*row[:3], row[3] + 1], PreprocessConfig())[0],  # mtime
        cache_module.recording_key([row[0], "other.bdf", *row[2:]], PreprocessConfig())[0],
    ]
    assert len({key, *others}) == 5 and all(k.startswith("r-") for k in others)


def test_float16_store_is_half_the_bytes_within_the_documented_error(store):
    cache, c2, half = store
    assert half.cache_key != c2.cache_key
    assert _bytes(cache / "f16", "r-*") < 0.55 * _bytes(cache / "f32", "r-*")
    assert half.X.stored_dtype == np.float16 and half.X.dtype == np.float32
    scales = half.X.scales
    assert np.all(np.log2(scales) == np.round(np.log2(scales)))  # powers of two: exact
    a = np.asarray(c2.X, dtype=np.float64)
    b = np.asarray(half.X, dtype=np.float64)
    assert np.array_equal(np.isfinite(a), np.isfinite(b))
    err = np.abs(a - b)
    normal = np.abs(a) >= 2.0 ** -14 * scales[half.X.index[:, 0]][:, None, None]
    assert normal.mean() > 0.99  # the bound covers nearly every sample
    assert (err[normal] / np.abs(a[normal])).max() <= F16_BOUND * (1 + 1e-6)
    rms = np.sqrt((err ** 2).sum() / (a ** 2).sum())
    assert 0 < rms < F16_BOUND
    with pytest.raises(ValueError, match="cache_dtype"):
        load_challenge_windows(2, root=cache, cache_dir=cache, cache_dtype="int8", **QUIET)


def test_info_of_a_recording_entry(store):
    cache, c2, _ = store
    rec = cache / "f32" / c2.info["recordings"][0]
    info = json.loads((rec / "info.json").read_text())
    assert info["dtype"] == "float32" and info["scale"] == 1.0 and info["n_chans"] == 129
    assert info["non_finite_runs"] == [] and info["inputs"]["files"][0][1].endswith(".bdf")
    assert np.load(rec / "data.npy", mmap_mode="r").shape == (129, info["n_samples"])


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("augment", [None, ["time_shift", "time_scale"]])
def test_dataloader_workers_train_the_same_weights(tiny_root, tmp_path, augment):
    import torch

    from eegattn.training.estimator import EEGAttentionRegressor

    windows = load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, **QUIET,
                                     shift_after_stimulus_s=0.3, window_s=2.4)
    weights, draws = {}, {}
    for workers in (0, 2):
        est = EEGAttentionRegressor(
            "lightweight_fast", max_epochs=2, batch_size=16, verbose=0, seed=5,
            crop_n_times=200, crop_anchor=20, augment=augment, num_workers=workers,
            early_stopping=False, valid_fraction=0.0)
        torch.manual_seed(0)
        est.fit(windows)
        weights[workers] = est.model_.state_dict()
        draws[workers] = torch.rand(1)  # the caller's RNG is left alone either way
    assert all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    assert torch.equal(draws[0], draws[2])


def test_window_dataset_and_auto_workers(store):
    import torch

    from eegattn.training.batches import WindowDataset, auto_num_workers

    _, c2, _ = store
    dataset = WindowDataset(c2)
    x, y = dataset[3]
    assert len(dataset) == len(c2) and x.dtype == torch.float32
    np.testing.assert_array_equal(x.numpy(), c2.X[3])
    assert float(y) == pytest.approx(float(c2.y[3]))
    assert auto_num_workers("cpu") == 0
    with pytest.raises(ValueError, match="one target per window"):
        WindowDataset(np.zeros((2, 3, 4)))


def test_preprocess_command_takes_the_cache_dtype(tiny_root, tmp_path, capsys):
    from eegattn.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["preprocess", "--challenge", "1", "--root", str(tiny_root), "--cache-dir",
                     str(tmp_path / "c"), "--cache-dtype", "float16", "--no-progress"]) == 0
    stored = {np.load(p, mmap_mode="r").dtype for p in (tmp_path / "c").glob("r-*/data.npy")}
    assert stored == {np.dtype(np.float16)}
    capsys.readouterr()
    assert main(["preprocess", "--challenge", "1", "--root", str(tiny_root), "--cache-dir",
                 str(tmp_path / "d"), "--cache-dtype", "float8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "float16" in err[0] and "float8" in err[0]
    assert not (tmp_path / "d").exists()


def test_memory_maps_are_closed_past_a_budget_of_mapped_bytes(tmp_path, monkeypatch):
    """Pages of a map count as resident memory until it is unmapped: past the budget of
    mapped recordings the maps close (and reopen on next use), the same windows coming out."""
    from eegattn.data import indexed

    rng = np.random.default_rng(0)
    data = [rng.normal(size=(3, 1000)).astype(np.float32) for _ in range(3)]  # 12 kB each
    for k, d in enumerate(data):
        np.save(tmp_path / f"rec{k}.npy", d)
    index = np.array([[k, s] for k in range(3) for s in (0, 400, 800)])
    windows = IndexedWindows([tmp_path / f"rec{k}.npy" for k in range(3)], index, n_times=100)
    expected = np.stack([data[k][:, s: s + 100] for k, s in index])
    monkeypatch.setattr(indexed, "MAP_BUDGET_BYTES", 20_000)  # one recording and a half
    np.testing.assert_array_equal(windows.gather(np.arange(3)), expected[:3])  # recording 0
    assert windows._arrays[0] is not None  # 12 kB mapped: under the budget
    np.testing.assert_array_equal(windows.gather(np.array([3])), expected[3:4])  # recording 1
    assert all(a is None for a in windows._arrays)  # 24 kB mapped: every map closed
    np.testing.assert_array_equal(windows[5], expected[5])  # reopened on use
    assert windows._arrays[1] is not None
