"""bench/models.py, part 2: what the child processes measure (speed, NRMSE, a release, a
profile), each in a fresh interpreter."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402  (bench/ is not a package)
from _models_spec import (  # noqa: E402
    FLOP_BATCH,
    N_CHANS,
    N_TIMES,
    SIGNAL_VOLTS,
    _build,
    model_spec,
)


def _count_flops(model, x, y) -> tuple[int, int, int]:
    """(forward FLOPs, forward + backward FLOPs, bytes saved for backward) of one batch."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(x)
    forward = counter.get_total_flops()
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return t

    with FlopCounterMode(display=False) as counter:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = F.mse_loss(model(x), y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return forward, counter.get_total_flops(), sum(saved.values())


def _time_matmul(a, b, calls: int = 3) -> float:
    """Median seconds of ``calls`` float32 ``torch.mm(a, b)``."""

    import torch

    times = []
    for _ in range(calls):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child_speed(spec: dict) -> dict:
    """FLOPs, then interleaved training / inference / matmul timings of every model."""
    import torch

    from eegattn.training.loop import head_criterion, make_loss
    from eegattn.training.loop import train_step as loop_step

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    batch = spec["batch"]
    x = torch.randn(batch, N_CHANS, N_TIMES) * SIGNAL_VOLTS
    y = torch.randn(batch)
    mse = make_loss("mse")
    x_small, y_small = x[:FLOP_BATCH].clone(), y[:FLOP_BATCH, None].clone()

    models, optimizers, info, skipped = {}, {}, {}, {}
    available = common.available_memory_bytes()
    for name in spec["models"]:
        model = _build(name)
        fwd, fwd_bwd, saved = _count_flops(model, x_small, y_small)
        n_params = sum(p.numel() for p in model.parameters())
        # saved activations scale with the batch; backward needs about as much again
        need = 2.5 * saved * batch / FLOP_BATCH + 16 * n_params
        info[name] = {
            "params": n_params,
            "flops_forward": fwd / FLOP_BATCH,
            "flops_train": fwd_bwd / FLOP_BATCH,
            "need_bytes": need,
        }
        if available is not None and need > spec["memory_fraction"] * available:
            skipped[name] = (
                f"cannot run (needs about {need / common.GB:.1f} GB, "
                f"{available / common.GB:.1f} GB available)"
            )
            continue
        models[name] = model
        optimizers[name] = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train_step(name):  # the training loop's own step (eegattn.training.loop), with the
        models[name].train()  # head's own loss where it has one (the distribution head)
        loop_step(models[name], optimizers[name], mse, x, y,
                  criterion=head_criterion(models[name]))

    def infer(name):
        model = models[name]
        model.eval()
        with torch.inference_mode():
            model(x)

    def timed(fn, name) -> float:
        start = time.perf_counter()
        fn(name)
        return time.perf_counter() - start

    a = torch.randn(spec["matmul_size"], spec["matmul_size"])
    b = torch.randn(spec["matmul_size"], spec["matmul_size"])
    matmul_flops = 2 * spec["matmul_size"] ** 3
    start = time.perf_counter()
    for name in models:  # warm-up: thread pools, oneDNN primitives, allocator
        for _ in range(spec["warmup"]):
            train_step(name)
            infer(name)
    _time_matmul(a, b, calls=1)
    warmup_s = time.perf_counter() - start

    names = list(models)
    train_s = {n: [] for n in names}
    infer_s = {n: [] for n in names}
    peak = []
    for repeat in range(spec["repeats"]):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        peak.append(matmul_flops / _time_matmul(a, b))
        for name in order:
            train_s[name].append(timed(train_step, name))
            infer_s[name].append(timed(infer, name))
        print(f"repeat {repeat + 1}/{spec['repeats']} done", file=sys.stderr, flush=True)
    return {
        "status": "ok",
        "batch": batch,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "warmup_s": warmup_s,
        "info": info,
        "skipped": skipped,
        "train_s": train_s,
        "infer_s": infer_s,
        "peak_flops": peak,
        "matmul_size": spec["matmul_size"],
        "peak_rss": common.peak_rss_bytes(),
    }


def _estimator_fit_predict(name, X_train, y_train, X_test, spec) -> tuple:
    from eegattn.training.estimator import EEGAttentionRegressor

    registry_name, options = model_spec(name)
    est = EEGAttentionRegressor(
        model=registry_name,
        model_options=options or None,
        max_epochs=spec["epochs"],
        batch_size=spec["batch"],
        lr=spec["lr"],
        early_stopping=False,
        valid_fraction=0.0,
        sfreq=spec["sfreq"],
        seed=spec["seed"],
        verbose=0,
    )
    est.fit(X_train, y_train)
    return est.predict(X_test), est.history_


def child_nrmse(spec: dict) -> dict:
    """Train one model on the training subjects, NRMSE on the held-out subjects."""
    import warnings

    import numpy as np
    import torch

    warnings.simplefilter("ignore")
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    from eegattn.data.cache import load_challenge_windows
    from eegattn.training.metrics import mean_predictor_nrmse, nrmse
    from eegattn.training.splits import subject_split

    ws = load_challenge_windows(1, root=spec["root"], cache_dir=spec["cache_dir"], progress=False)
    split = subject_split(
        ws.groups, valid_fraction=0.0, test_fraction=spec["test_fraction"], seed=spec["seed"]
    )
    X_train, y_train = np.asarray(ws.X[split.train]), np.asarray(ws.y[split.train])
    X_test, y_test = np.asarray(ws.X[split.test]), np.asarray(ws.y[split.test])
    spec = {**spec, "sfreq": float(ws.sfreq)}
    start = time.perf_counter()
    pred, history = _estimator_fit_predict(spec["model"], X_train, y_train, X_test, spec)
    seconds = time.perf_counter() - start
    result = {
        "status": "ok",
        "trainer": "estimator",
        "nrmse": nrmse(y_test, pred),
        "mean_predictor": mean_predictor_nrmse(y_test, y_train),
        "fit_s": seconds,
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "train_subjects": list(split.train_subjects),
        "test_subjects": list(split.test_subjects),
        "train_loss": [h.get("train_loss") for h in history] if history else None,
    }
    try:
        from eegattn.data.synthetic import oracle_predict

        oracle = oracle_predict(Path(spec["root"]) / "EEG2025r5", 1, X=X_test, sfreq=spec["sfreq"])
        result["oracle"] = nrmse(y_test, oracle)
    except Exception as err:  # the oracle is a reference, not a requirement
        result["oracle_error"] = f"{type(err).__name__}: {err}"
    return result


def child_release(spec: dict) -> dict:
    """Write (or reuse) the synthetic release and build its challenge-1 window cache."""
    import warnings

    warnings.simplefilter("ignore")
    from eegattn.data.cache import load_challenge_windows
    from eegattn.data.synthetic import make_release

    options = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in spec.get("release_options", {}).items()
    }  # JSON made tuples lists
    folder = make_release(spec["root"], n_subjects=spec["n_subjects"], seed=spec["seed"], **options)
    ws = load_challenge_windows(1, root=spec["root"], cache_dir=spec["cache_dir"], progress=False)
    return {
        "status": "ok",
        "folder": str(folder),
        "n_windows": len(ws),
        "n_subjects_with_windows": int(len(set(ws.groups))),
    }


def child_profile(spec: dict) -> dict:
    """torch.profiler of one training step (or inference pass): the ops with the most self
    CPU time, and the share of matmul-like ops (convolutions, mm, addmm, bmm)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from eegattn.training.loop import make_loss, train_step

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    model = _build(spec["model"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(spec["batch"], N_CHANS, N_TIMES) * SIGNAL_VOLTS
    y = torch.randn(spec["batch"])
    mse = make_loss("mse")

    def step():  # the training loop's own step (eegattn.training.loop)
        train_step(model, optimizer, mse, x, y)

    step()
    if spec.get("mode") == "infer":
        model.eval()

        def step():
            with torch.inference_mode():
                model(x)

        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: spec["top"]]
    matmul_like = ("conv", "mm", "linear")
    matmul_share = (
        sum(e.self_cpu_time_total for e in events if any(k in e.key for k in matmul_like)) / total
    )
    return {
        "status": "ok",
        "total_ms": total / 1000,
        "matmul_share": matmul_share,
        "ops": [
            {
                "op": e.key,
                "self_ms": e.self_cpu_time_total / 1000,
                "share": e.self_cpu_time_total / total,
                "calls": e.count,
            }
            for e in top
        ],
    }
