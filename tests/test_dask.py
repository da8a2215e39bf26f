"""Preprocessing on a real Dask cluster (``backend="dask"``): the same windows as one process,
worker errors with the recording named, and bad options / addresses refused with one line.

One ``LocalCluster`` of 2 worker processes (1 thread each) serves the module; its address is
handed over as a remote scheduler's would be.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from eegattn.data import hbn  # noqa: E402
from eegattn.data import preprocess as prep  # noqa: E402
from eegattn.data.preprocess import map_recordings  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None,
                      scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"}) as local:
        yield local


def _free_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.filterwarnings("ignore::eegattn.data.hbn.SkippedRecordingsWarning")
@pytest.mark.parametrize("challenge", [1, 2])
def test_cluster_windows_equal_single_process(tiny_root, cluster, challenge):
    from eegattn.data.cache import load_challenge_windows

    one = load_challenge_windows(challenge, root=tiny_root, use_cache=False, n_jobs=1,
                                 progress=False)
    dask = load_challenge_windows(challenge, root=tiny_root, use_cache=False, backend="dask",
                                  scheduler=cluster.scheduler_address, progress=False)
    assert len(one.y) > 40 and one.metadata["subject"].nunique() >= 2
    np.testing.assert_array_equal(np.asarray(dask.X), np.asarray(one.X))
    np.testing.assert_array_equal(dask.y, one.y)
    pd.testing.assert_frame_equal(dask.metadata.reset_index(drop=True),
                                  one.metadata.reset_index(drop=True))


def test_tasks_run_in_both_workers(cluster):
    import os

    def pid(_):
        import time

        time.sleep(0.05)
        return os.getpid()

    pids = set(map_recordings(pid, range(12), backend="dask",
                              scheduler=cluster.scheduler_address, progress=False))
    assert len(pids) == 2 and os.getpid() not in pids


def test_worker_error_names_the_recording(tiny_root, cluster):
    recordings = hbn.discover_recordings(tiny_root, tasks="contrastChangeDetection")[:3]
    jobs = [(rec, None) for rec in recordings]

    def unreadable(job):  # defined here: shipped to the workers by value
        if job[0] is not None and job[0].path.name == recordings[1].path.name:
            raise OSError("input/output error")
        return job[0].path.name

    results = map_recordings(unreadable, jobs, backend="dask",
                             scheduler=cluster.scheduler_address, progress=False)
    assert next(results) == recordings[0].path.name  # the one before is delivered first
    with pytest.raises(OSError, match="input/output error") as caught:
        next(results)
    assert str(recordings[1].path.absolute()) in str(caught.value)


def test_local_cluster_without_address_keeps_order():
    """No scheduler: a LocalCluster of n_jobs processes for the call, closed afterwards."""
    out = list(map_recordings(abs, [-3, 1, -2, -7, 5], n_jobs=2, backend="dask",
                              progress=False))
    assert out == [3, 1, 2, 7, 5]


def test_workers_must_see_the_release(cluster, tmp_path):
    missing = tmp_path / "elsewhere" / "sub-X_eeg.bdf"
    with pytest.raises(FileNotFoundError, match="cannot see .*share"):
        list(map_recordings(str, [missing], backend="dask",
                            scheduler=cluster.scheduler_address, progress=False))


@pytest.mark.parametrize("kwargs, match", [
    (dict(backend="spark"), "Invalid value for the 'backend' parameter"),
    (dict(scheduler="tcp://127.0.0.1:8786"), "needs backend='dask'"),
    (dict(backend="loky", scheduler="tcp://127.0.0.1:8786"), "needs backend='dask'"),
    (dict(backend="dask", scheduler="127.0.0.1"), "Dask scheduler address such as"),
    (dict(backend="dask", scheduler="http://host:8786"), "Dask scheduler address such as"),
    (dict(backend="dask", scheduler="tcp://host:99999"), "Dask scheduler address such as"),
])
def test_bad_options_fail_at_the_call(kwargs, match):
    with pytest.raises(ValueError, match=match):
        map_recordings(abs, [1], progress=False, **kwargs)  # not iterated: checked at once


def test_unreachable_scheduler_fails_fast(monkeypatch):
    import time

    monkeypatch.setattr(prep, "DASK_CONNECT_TIMEOUT_S", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler.*dask scheduler"):
        list(map_recordings(abs, [1], backend="dask", scheduler=address, progress=False))
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler.*refused"):
        prep.probe_scheduler(address)
    assert time.monotonic() - start < 15


def _cli(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eegattn", *argv], capture_output=True,
                          text=True, timeout=120, cwd=cwd, check=False)


def test_cli_refuses_bad_options_with_one_line(tiny_root, tmp_path):
    port = _free_port()
    cases = [
        (("preprocess", "--challenge", "1", "--backend", "spark"), "invalid choice: 'spark'"),
        (("preprocess", "--challenge", "1", "--scheduler", "tcp://127.0.0.1:8786"),
         "needs backend='dask'"),
        (("preprocess", "--challenge", "1", "--root", str(tiny_root), "--backend", "dask",
          "--scheduler", f"tcp://127.0.0.1:{port}"), "cannot reach the Dask scheduler"),
        (("train", "--challenge", "1", "--backend", "dask", "--scheduler", "nowhere"),
         "Dask scheduler address such as"),
    ]
    for argv, message in cases:
        done = _cli(*argv, "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (argv, done.stderr)
        assert message in lines[-1], (argv, done.stderr)
        assert "Traceback" not in done.stderr, argv
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()


def test_dask_is_imported_only_when_used():
    code = ("import sys\n"
            "from eegattn.data.cache import load_challenge_windows\n"
            "from eegattn.data.preprocess import map_recordings\n"
            "list(map_recordings(abs, [-1], n_jobs=1, progress=False))\n"
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
