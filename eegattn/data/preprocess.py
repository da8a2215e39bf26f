"""Per-recording preprocessing with braindecode ``Preprocessor`` chains, run in parallel.

The chain (``build_preprocessors``), in this order:

1. channel check: exactly the 129 HBN channels (``E1``..``E128``, ``Cz``), put in that order;
2. optional notch filter(s) (``notch``, Hz) and band-pass (``l_freq`` / ``h_freq``, Hz);
3. resampling to ``sfreq`` (100 Hz) when the recording has another rate;
4. optional re-referencing (``reference="average"`` or a channel name).

Filters at or above the Nyquist frequency of the recording are refused with a clear message
before MNE runs (``check_filter_settings``). No input normalisation is done here: the models
normalise their own input, and a submission receives raw windows in volts. ``Cz`` is the flat
HBN reference channel; nothing here divides by a channel's spread.

Recordings run in parallel (``map_recordings``) with a tqdm progress bar, in one of two
engines:

- joblib (default): ``loky`` worker processes on this machine (``n_jobs`` of them);
- Dask (``backend="dask"``): a ``dask.distributed`` cluster. ``scheduler="tcp://host:8786"``
  connects to a running one (``dask scheduler`` + ``dask worker`` on other machines);
  without an address a ``LocalCluster`` of ``n_jobs`` worker processes is started here and
  closed afterwards. Needs ``pip install "eegattn[cluster]"`` (``.[dev]`` includes it).

Either way the workers read the recordings and send the windows back to the calling process,
which writes the cache; on a cluster every worker needs the release at the same path (a
shared file system). See docs/scaling.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from eegattn.challenge import SFREQ
from eegattn.data.montage import HBN_CHANNELS

TARGET_SFREQ = SFREQ  # the challenge releases' rate


@dataclass(frozen=True)
class PreprocessConfig:
    """What is done to every recording before windowing (all of it enters the cache key).

    sfreq: output rate in Hz (recordings at another rate are resampled).
    l_freq / h_freq: band-pass edges in Hz (None: no high-pass / low-pass).
    notch: line frequencies to notch out in Hz, e.g. ``(60.0,)``; empty: none.
    reference: None keeps the recorded (Cz) reference; ``"average"`` or a channel name
        re-references.
    channels: the channel names every recording must have (their order is enforced).
    """

    sfreq: float = TARGET_SFREQ
    l_freq: float | None = None
    h_freq: float | None = None
    notch: tuple[float, ...] = ()
    reference: str | None = None
    channels: tuple[str, ...] = field(default=HBN_CHANNELS, repr=False)

    def __post_init__(self):
        notch = self.notch
        if notch is None:
            notch = ()
        elif isinstance(notch, (int, float)):
            notch = (notch,)
        object.__setattr__(self, "notch", tuple(float(f) for f in notch))
        object.__setattr__(self, "channels", tuple(self.channels))
        if not (isinstance(self.sfreq, (int, float)) and self.sfreq > 0):
            raise ValueError(f"sfreq must be a positive rate in Hz, got {self.sfreq!r}")
        object.__setattr__(self, "sfreq", float(self.sfreq))
        for name in ("l_freq", "h_freq"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive frequency in Hz or None, got "
                                 f"{value!r}")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(
                f"l_freq ({self.l_freq} Hz) must be below h_freq ({self.h_freq} Hz) for a "
                "band-pass"
            )
        if any(f <= 0 for f in self.notch):
            raise ValueError(f"notch frequencies must be positive, got {self.notch}")
        if self.reference is not None and self.reference != "average" \
                and self.reference not in self.channels:
            raise ValueError(
                f"reference must be None, 'average' or a channel name such as 'Cz', got "
                f"{self.reference!r}"
            )

    def as_dict(self) -> dict:
        return asdict(self)

    def needs_mne(self, sfreq_in: float) -> bool:
        """True when the chain does more than check channels for a recording at
        ``sfreq_in``."""
        return bool(
            self.l_freq or self.h_freq or self.notch or self.reference
            or not np.isclose(sfreq_in, self.sfreq)
        )


def check_filter_settings(config: PreprocessConfig, sfreq_in: float, where: str = "") -> None:
    """Refuse filters at or above the Nyquist frequency of a ``sfreq_in`` recording."""
    nyquist = sfreq_in / 2.0
    at = f" ({where})" if where else ""
    for name, freq in (("l_freq", config.l_freq), ("h_freq", config.h_freq)):
        if freq is not None and freq >= nyquist:
            raise ValueError(
                f"{name}={freq} Hz is at or above the Nyquist frequency {nyquist:g} Hz of a "
                f"{sfreq_in:g} Hz recording{at}; MNE cannot filter there: use {name} < "
                f"{nyquist:g} or None (the challenge files are already band-passed 0.5-50 Hz)"
            )
    bad = [f for f in config.notch if f >= nyquist]
    if bad:
        raise ValueError(
            f"notch at {bad} Hz is at or above the Nyquist frequency {nyquist:g} Hz of a "
            f"{sfreq_in:g} Hz recording{at}: line noise above Nyquist is not in the signal; "
            "drop the notch for 100 Hz files"
        )


def check_channels(raw, expected: Sequence[str] = HBN_CHANNELS):
    """Check ``raw`` has exactly the ``expected`` channels and put them in that order.

    Meant for ``Preprocessor(check_channels, apply_on_array=False)``; modifies ``raw``.
    """
    names = list(raw.ch_names)
    if len(names) != len(expected) or set(names) != set(expected):
        missing = sorted(set(expected) - set(names))[:4]
        extra = sorted(set(names) - set(expected))[:4]
        raise ValueError(
            f"{_describe(raw)} has {len(names)} channels; expected the {len(expected)} HBN "
            f"channels (E1..E128, Cz); missing {missing}, unexpected {extra}"
        )
    if names != list(expected):
        raw.reorder_channels(list(expected))
    return raw


def _describe(raw) -> str:
    files = getattr(raw, "filenames", None) or ()
    return str(files[0]) if files and files[0] else "recording"


def build_preprocessors(config: PreprocessConfig, sfreq_in: float) -> list:
    """The braindecode ``Preprocessor`` chain for a recording at ``sfreq_in`` Hz."""
    from eegattn.utils.quiet import quiet_braindecode_import

    with quiet_braindecode_import():
        from braindecode.preprocessing import Preprocessor

    check_filter_settings(config, sfreq_in)

    def mne_step(method: str, **kwargs):
        # an MNE Raw method by name; apply_on_array=False said outright, or braindecode warns
        # (and corrects it) on every recording
        return Preprocessor(method, apply_on_array=False, verbose="error", **kwargs)

    chain = [Preprocessor(check_channels, apply_on_array=False, expected=config.channels)]
    if config.notch:
        chain.append(mne_step("notch_filter", freqs=list(config.notch)))
    if config.l_freq is not None or config.h_freq is not None:
        chain.append(mne_step("filter", l_freq=config.l_freq, h_freq=config.h_freq))
    if not np.isclose(sfreq_in, config.sfreq):
        chain.append(mne_step("resample", sfreq=config.sfreq))
    if config.reference is not None:
        ref = "average" if config.reference == "average" else [config.reference]
        chain.append(mne_step("set_eeg_reference", ref_channels=ref, projection=False))
    return chain


def read_raw(path, *, preload: bool = True):
    """Read one ``.bdf`` / ``.edf`` with MNE; ValueError naming the file when MNE cannot."""
    import mne

    path = Path(path)
    reader = mne.io.read_raw_bdf if path.suffix.lower() == ".bdf" else mne.io.read_raw_edf
    try:
        return reader(path, preload=preload, verbose="error")
    except (ValueError, OSError, RuntimeError, IndexError) as err:
        raise ValueError(f"{path}: MNE cannot read it ({err}); the file is corrupt or "
                         "truncated, download it again") from None


def preprocess_recording(path, config: PreprocessConfig | None = None):
    """Read and preprocess one recording: returns ``(data, sfreq)``, data (n_chans, n_times)
    float64 in volts, channels in ``config.channels`` order (default config: channel check
    only, 100 Hz)."""
    from eegattn.data.hbn import read_bdf_data, read_bdf_header

    config = PreprocessConfig() if config is None else config
    path = Path(path)
    if path.suffix.lower() == ".bdf":
        header = read_bdf_header(path)
        if not config.needs_mne(header.sfreq):
            # Only the channel check to do: read the samples directly (bit-identical to MNE,
            # about twice as fast, no braindecode / torch import in the workers).
            data = read_bdf_data(path, header)
            return _in_channel_order(data, header.channels, config.channels, path), \
                header.sfreq
    raw = read_raw(path, preload=True)
    sfreq_in = float(raw.info["sfreq"])
    if config.needs_mne(sfreq_in):
        for step in build_preprocessors(config, sfreq_in):
            raw = step.apply(raw)
    else:  # only the channel check: skip importing braindecode (and torch) in the workers
        check_channels(raw, config.channels)
    return raw.get_data(), float(raw.info["sfreq"])


def _in_channel_order(data: np.ndarray, names, expected, where) -> np.ndarray:
    """Rows of ``data`` (channels ``names``) in the ``expected`` order; ValueError when the
    channel set differs (the same check as ``check_channels``)."""
    names, expected = list(names), list(expected)
    if len(names) != len(expected) or set(names) != set(expected):
        missing = sorted(set(expected) - set(names))[:4]
        extra = sorted(set(names) - set(expected))[:4]
        raise ValueError(
            f"{where} has {len(names)} channels; expected the {len(expected)} HBN channels "
            f"(E1..E128, Cz); missing {missing}, unexpected {extra}"
        )
    if names == expected:
        return data
    position = {name: i for i, name in enumerate(names)}
    return data[[position[name] for name in expected]]


def _exit_with_parent(parent_pid: int, show_warning: Callable | None = None) -> None:
    """Worker initializer of the local process pools: the worker dies with ``parent_pid``
    (and displays warnings with ``show_warning`` when given: the CLI's one-line format).

    Why: joblib's loky workers (and multiprocessing's) only notice a dead parent after their
    idle time-out (5 minutes) or never, so ``kill -9`` of ``eegattn preprocess --n-jobs N``
    left N workers of ~130 MB running, still holding the terminal's pipes. A parent cannot
    clean up after a SIGKILL, so the worker has to watch its parent itself:

    - Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (through ctypes, no extra dependency): the
      kernel kills the worker the instant its parent exits, however it exits, even while the
      worker is busy in C code that holds the GIL. The signal is tied to the thread that
      started the worker; loky starts them from the caller's thread or its executor-manager
      thread, which both live as long as the pool.
    - elsewhere (or if prctl fails): a daemon thread checks once a second whether the worker
      was re-parented (``os.getppid()`` changed), and exits.

    Both check ``getppid`` once at start: a parent that died before the initializer ran is
    caught too. The workers ignore SIGINT: Ctrl-C reaches the whole process group, and the
    parent, which gets it too, shuts the pool down (no traceback from every worker).
    """
    import os
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if show_warning is not None:
        import warnings

        warnings.showwarning = show_warning
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1  # <linux/prctl.h>
            armed = libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):  # no libc symbol: fall back to the watchdog
            armed = False
    if os.getppid() != parent_pid:  # the parent is already gone
        os._exit(1)
    if not armed:
        import threading
        import time

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="eegattn-parent-watch", daemon=True).start()


def _is_local_process_pool(backend) -> bool:
    """True when joblib would start worker processes on this machine (loky, multiprocessing):
    those get ``_exit_with_parent``; threads die with the process, and Dask / Ray workers
    belong to their cluster."""
    from joblib.parallel import BACKENDS, get_active_backend

    pools = tuple(BACKENDS[name] for name in ("loky", "multiprocessing") if name in BACKENDS)
    if backend is None:
        backend = get_active_backend()[0]
    if isinstance(backend, str):
        return backend in ("loky", "multiprocessing")
    return isinstance(backend, pools)


#: joblib's backends that ``map_recordings`` accepts by name (others: registered ones, e.g. Ray)
JOBLIB_BACKENDS = ("loky", "multiprocessing", "threading", "sequential")
#: seconds to reach a Dask scheduler, and for a first worker to join it, before giving up
DASK_CONNECT_TIMEOUT_S = 10.0
DASK_WORKER_WAIT_S = 30.0
_ADDRESS_RE = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?:\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]+)"
                         r":(?P<port>\d{1,5})$")
_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")


def check_parallel_options(n_jobs=1, backend=None, scheduler=None) -> None:
    """Refuse bad ``n_jobs`` / ``backend`` / ``scheduler`` values before any work, with one
    line naming the fix (used by ``map_recordings`` and the command line)."""
    from eegattn.utils.check import check_option

    if n_jobs is not None and (not isinstance(n_jobs, int) or isinstance(n_jobs, bool)
                               or n_jobs == 0 or n_jobs < -1):
        raise ValueError(f"n_jobs must be a positive integer, -1 (all cores) or None, got "
                         f"{n_jobs!r}")
    if backend is not None and isinstance(backend, str) and backend != "dask":
        from joblib.parallel import BACKENDS

        registered = [name for name in BACKENDS if name not in JOBLIB_BACKENDS]
        check_option("backend", backend, (*JOBLIB_BACKENDS, "dask", *registered),
                     fix="Use 'dask' for a Dask cluster, or leave it unset for loky.")
    if scheduler is None:
        return
    if backend != "dask":
        raise ValueError(f"a scheduler address ({scheduler!r}) needs backend='dask' "
                         "(--backend dask); drop the address to run on this machine")
    match = _ADDRESS_RE.match(scheduler) if isinstance(scheduler, str) else None
    if match is None or int(match["port"]) > 65535 or (
            match["scheme"] is not None and match["scheme"] not in _SCHEMES):
        raise ValueError(f"scheduler must be a Dask scheduler address such as "
                         f"tcp://HOST:8786 (what `dask scheduler` prints), got {scheduler!r}")


def probe_scheduler(scheduler: str, timeout: float = DASK_CONNECT_TIMEOUT_S) -> None:
    """Open (and close) a TCP connection to a ``tcp://host:port`` scheduler address, so the
    command line refuses an unreachable one before it creates anything; ValueError with the
    fix. Other schemes are left to ``dask.distributed``."""
    import socket

    match = _ADDRESS_RE.match(scheduler)
    if match is None or (match["scheme"] or "tcp") != "tcp":
        return
    host = scheduler.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    try:
        socket.create_connection((host, int(match["port"])), timeout=timeout).close()
    except OSError as err:
        raise ValueError(
            f"cannot reach the Dask scheduler at {scheduler} ({err.strerror or err}); start one "
            f"there with `dask scheduler` and workers with `dask worker {scheduler}`, or pass "
            "the address `dask scheduler` printed"
        ) from None


def map_recordings(
    function: Callable,
    items: Iterable,
    *,
    n_jobs: int | None = 1,
    backend: str | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    desc: str = "recordings",
) -> Iterator:
    """``function(item)`` for every item in parallel, results yielded in input order.

    n_jobs: worker count (``-1``: all cores; None: joblib's active ``parallel_config``, or
        all cores for a local Dask cluster); ignored when ``scheduler`` is given (the cluster
        has its workers).
    backend: None = joblib's active backend (``loky`` unless ``joblib.parallel_config`` picks
        another); a joblib backend name; or ``"dask"``: a ``dask.distributed`` cluster.
    scheduler: with ``backend="dask"``, the address of a running scheduler
        (``tcp://host:8786``); None starts a ``LocalCluster`` of ``n_jobs`` processes here
        for this call.
    progress: show a tqdm bar on stderr.

    The options are checked at once (ValueError); the work starts when the result is
    iterated. Local worker processes of joblib (loky, multiprocessing) exit as soon as this
    process dies, even by SIGKILL (``_exit_with_parent``), so a killed run leaves no workers
    behind. An error in a Dask worker is raised here with the recording named.
    """
    check_parallel_options(n_jobs, backend, scheduler)
    items = list(items)
    if backend == "dask":
        return _dask_map(function, items, n_jobs=n_jobs, scheduler=scheduler,
                         progress=progress, desc=desc)
    return _joblib_map(function, items, n_jobs=n_jobs, backend=backend, progress=progress,
                       desc=desc)


def _joblib_map(function, items, *, n_jobs, backend, progress, desc) -> Iterator:
    import os
    import warnings

    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    worker_options = {}
    if _is_local_process_pool(backend):
        # the command line's one-line warnings (eegattn.cli.clean_warnings) hold in workers too
        show = warnings.showwarning
        show = show if getattr(show, "__module__", None) == "eegattn.cli" else None
        worker_options = dict(initializer=_exit_with_parent, initargs=(os.getpid(), show))
    parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator",
                        **worker_options)
    results = parallel(delayed(function)(item) for item in items)
    yield from tqdm(results, total=len(items), desc=desc, unit="rec", disable=not progress,
                    leave=False)


# Dask through its futures directly (client.submit), not joblib's "dask" backend: a task per
# recording with the recording in its key (the dashboard names it), a bounded number of tasks
# in flight so finished windows wait on the workers only until the caller has written the ones
# before them (a release's windows are many GB; joblib's backend hands everything over at
# once), the failing recording named in the error, and clear errors for an unreachable
# scheduler or a cluster without workers instead of a hang.
def _dask_map(function, items, *, n_jobs, scheduler, progress, desc) -> Iterator:
    import os
    import uuid
    from collections import deque

    from tqdm.auto import tqdm

    try:
        import distributed
    except ImportError as err:
        raise ValueError(f'backend="dask" needs dask.distributed ({err}): pip install '
                         '"eegattn[cluster]" (or "dask[distributed]")') from None
    if not items:
        return
    cluster = None
    if scheduler is None:
        workers = (os.cpu_count() or 1) if n_jobs in (None, -1) else n_jobs
        # one thread per worker: reading a recording holds the GIL much of the time; no
        # dashboard, and the scheduler's HTTP endpoint on a free port, not 8787 (a second
        # cluster on the machine would warn)
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"})
        client = distributed.Client(cluster)
    else:
        client = _connect(distributed, scheduler)
    try:
        if scheduler is not None:
            _check_workers_see(client, scheduler, _item_path(items[0]))
        threads = sum(client.nthreads().values())
        in_flight = max(4, 2 * threads)
        run = uuid.uuid4().hex[:8]
        pending: deque = deque()
        queued = iter(enumerate(items))

        def submit_more() -> None:
            for i, item in queued:
                name = Path(_item_path(item) or f"item-{i}").name
                pending.append((item, client.submit(function, item, key=f"{name}-{i}-{run}")))
                if len(pending) >= in_flight:
                    return

        submit_more()
        with tqdm(total=len(items), desc=desc, unit="rec", disable=not progress,
                  leave=False) as bar:
            while pending:
                item, future = pending.popleft()
                try:
                    result = future.result()
                except Exception as err:
                    for _, other in pending:
                        other.cancel()
                    named = _named_error(err, item)
                    if named is err:
                        raise
                    raise named from err
                future.release()  # the cluster may drop its copy of the windows now
                submit_more()
                bar.update()
                yield result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _connect(distributed, scheduler: str):
    """A ``Client`` of the scheduler at ``scheduler``; ValueError with the fix when it cannot
    be reached or no worker joins it."""
    timeout = DASK_CONNECT_TIMEOUT_S
    try:
        client = distributed.Client(scheduler, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(
            f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s ({reason}); "
            f"start one there with `dask scheduler` and workers with `dask worker "
            f"{scheduler}`, or pass the address `dask scheduler` printed"
        ) from None
    try:
        client.wait_for_workers(1, timeout=DASK_WORKER_WAIT_S)
    except (TimeoutError, OSError):
        client.close()
        raise ValueError(
            f"the Dask scheduler at {scheduler} has no workers (none joined within "
            f"{DASK_WORKER_WAIT_S:g} s); start some with `dask worker {scheduler}` on machines "
            "that see the release at the same path"
        ) from None
    return client


def _check_workers_see(client, scheduler: str, path: str | None) -> None:
    """Every worker must read the recordings at the caller's paths (a shared file system)."""
    import os

    if path is None:
        return
    seen = client.run(os.path.exists, path)
    blind = sorted(worker for worker, ok in seen.items() if not ok)
    if blind:
        more = f" (and {len(blind) - 1} more)" if len(blind) > 1 else ""
        raise FileNotFoundError(
            f"Dask worker {blind[0]}{more} of {scheduler} cannot see {path}; the workers read "
            "the release at this process's paths: put it on a file system they share, at the "
            "same absolute path (give --root as an absolute path)"
        )


def _item_path(item) -> str | None:
    """The recording an item of ``map_recordings`` stands for (a path, a ``Recording``, or a
    tuple starting with one), as an absolute path; None when it names none."""
    import os

    head = item[0] if isinstance(item, tuple) and item else item
    path = getattr(head, "path", head)
    if isinstance(path, (str, os.PathLike)):
        return str(Path(path).absolute())
    return None


def _named_error(err: BaseException, item) -> BaseException:
    """``err`` (raised in a worker) with the recording named in its message, same type when
    that type can be rebuilt from a message (else RuntimeError)."""
    path = _item_path(item)
    message = str(err)
    if type(err).__name__ == "KilledWorker":  # the worker died (out of memory, segfault)
        return RuntimeError(f"{path or 'a task'}: the Dask worker processing it died "
                            f"({message.splitlines()[0] if message else 'KilledWorker'}); look "
                            "in the workers' logs (out of memory?)")
    if path is None or path in message or Path(path).name in message:
        return err
    text = f"{path}: {message or type(err).__name__}"
    try:
        named = type(err)(text)
    except Exception:
        return RuntimeError(f"{text} ({type(err).__name__})")
    return named if str(named) == text else RuntimeError(f"{text} ({type(err).__name__})")


__all__ = [
    "PreprocessConfig", "TARGET_SFREQ", "check_filter_settings", "check_channels",
    "build_preprocessors", "read_raw", "preprocess_recording", "map_recordings",
    "check_parallel_options", "probe_scheduler",
]  # fmt: skip
