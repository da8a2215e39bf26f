"""Model benchmark (issue 5): speed, FLOPs, FLOP efficiency and NRMSE of every EEG model
against braindecode's EEGNeX, on CPU.

1. Speed (one subprocess, so every model sees the same machine state): windows/s of a training
   step (forward + MSE backward + AdamW step, train mode) and of inference (eval mode,
   ``torch.inference_mode``) on a batch of 256 windows of 129 x 200 float32 (~20 uV noise).
   After one untimed warm-up call per model, each repeat times one training step and one
   inference pass of every model, the model order rotated per repeat, plus a large float32
   ``torch.mm`` (the machine's peak matmul FLOP/s, median of 3 calls). Children run in the
   environment users have (glibc's default malloc; an mmap threshold of 1 MiB, which the memory
   benchmarks use, made the project's models up to 1.9x slower through page faults). So drift (other
   processes, frequency changes) hits all models and the matmul alike; speed-ups and FLOP
   fractions are computed per repeat (paired) and reported as median (min-max).
2. FLOPs per window: ``torch.utils.flop_counter.FlopCounterMode`` on a batch of 8 in train mode
   (forward, and forward + backward), divided by 8. The counter sees matmul-like ops (mm, bmm,
   addmm, convolutions, SDPA); elementwise work and the optimizer step are not counted.
   Achieved fraction = training FLOPs/s (forward + backward FLOPs x windows/s) / peak matmul
   FLOP/s of the same repeat.
3. NRMSE (challenge 1, one subprocess per model): a synthetic release (default 12 subjects,
   ``make_release(n_subjects=12, seed=0)``) -> cached windows -> seeded subject-wise split
   (25 % of the subjects held out for the test) -> ``EEGAttentionRegressor`` with the same
   epochs (default 2: the whole run stays near 10 min on 2 idle cores; use ``--epochs 10
   --skip-speed`` for a more telling comparison), batch (32), learning rate (1e-3, AdamW,
   cosine) and seed for every model, no early stopping -> official
   NRMSE on the held-out subjects, next to the training-mean predictor and the synthetic
   oracle (the best prediction from the planted signal). Every model trains through the
   estimator, the project's one training loop (``eegattn.training.loop``).

The reference of the speed columns is braindecode's ``EEGNeX`` itself, as braindecode ships it.
Its NRMSE row is the project's ``eegnex`` (that same network behind the project's input
normalisation): unnormalised EEGNeX sees ~1e-5 V inputs, where its BatchNorm epsilon dominates
the variance, so training it raw would not be a fair comparison. ``--models`` can add the
project's ``eegnex`` to the speed run.

Targets (issue 5), printed as PASS/FAIL: the lightweight model trains >= 25x and infers >= 20x
faster than EEGNeX with equal or better NRMSE; the project's own models reach >= 50 % of the
measured matmul FLOP/s in training. The speed-up targets are checked for two configurations of the
lightweight model: ``lightweight`` (the sparse-attention entry as written: convolution + max-pool,
average pooling, dropout 0.4) and the registry preset ``lightweight_fast``
(``eegattn.models.preset``: strided convolutions with strides 4 and 2 instead of convolution +
max-pool, so 25 tokens instead of 50, sinusoidal positions, average + max pooling beside a position
read-out of 4 features per token, no element dropout but whole feature maps dropped at 0.3 and
attention weights at 0.5; the same convolution and attention weights, 46,596 more head and read-out
weights). The "speed-up at matmul rate" column is the speed-up a model would reach if all its
counted FLOPs ran at the measured ``torch.mm`` rate, against EEGNeX as measured. It is a yardstick,
not a hard limit (the ``torch.mm`` rate is not the hardware's peak, and small models' repeats
sometimes beat it), but a target well above it is out of reach without cutting the model's FLOPs.

Usage::

    python bench/models.py                  # speed (5 repeats) + NRMSE (12 subjects, 2 epochs)
    python bench/models.py --quick          # ~1 min smoke run: batch 32, 2 repeats, tiny data
    python bench/models.py --skip-nrmse --repeats 7
    python bench/models.py --skip-speed --epochs 10 --n-subjects 20
    python bench/models.py --skip-speed --epochs 10 --root cache --n-subjects 24 \
        --nrmse-models lightweight_fast eegnex --nrmse-seeds 0 1 2 3   # mean over 4 splits
    python bench/models.py --profile lightweight eegnex_braindecode   # where the time goes
    python bench/models.py --profile lightweight_fast --profile-mode infer --profile-batch 256
    python bench/models.py --skip-nrmse --models lightweight:downsample=stride,dropout=0.2
    python bench/models.py --merge-nrmse a.json b.json --out c.json  # splits 0-3 + 4-5
    python bench/models.py --skip-speed --skip-reference ...  # then merge with EEGNeX's runs

Outputs: markdown tables and PASS/FAIL lines on stdout, ``bench/results/models.json`` and
``bench/results/models.png`` (``--quick`` writes ``models-quick.*``). Exit code 0 when every
target passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402  (bench/ is not a package)

N_CHANS, N_TIMES, SFREQ = 129, 200, 100.0
BATCH = 256
FLOP_BATCH = 8
SIGNAL_VOLTS = 20e-6  # typical EEG amplitude, so normalisation layers see realistic input
MATMUL_SIZE = 2048

REFERENCE = "eegnex_braindecode"  # braindecode's EEGNeX, unchanged
# Named configurations: bench name -> (registry name, options). Any registry name works too,
# and ``NAME:key=value,key=value`` adds options on the command line (values parsed as JSON).
TARGET_MODELS = ("lightweight", "lightweight_fast")  # the speed-up and NRMSE targets
PROJECT_MODELS = ("lightweight", "lightweight_fast", "improved", "lightweight_noattn")
DEFAULT_SPEED_MODELS = (*PROJECT_MODELS, REFERENCE)
NRMSE_MODELS = (*PROJECT_MODELS, "eegnex")
NRMSE_REFERENCE = "eegnex"
LABELS = {REFERENCE: "EEGNeX (braindecode)", "eegnex": "eegnex (EEGNeX + normalisation)"}

TARGET_TRAIN_SPEEDUP = 25.0
TARGET_INFER_SPEEDUP = 20.0
TARGET_PEAK_FRACTION = 0.5


# ----------------------------------------------------------------------------- child side


def model_spec(name: str) -> tuple[str, dict]:
    """(registry name, options) of a bench model name: a registry name (a preset such as
    ``lightweight_fast`` included), optionally followed by ``:key=value,...`` options that
    override its defaults (each value parsed as JSON, else kept as a string; commas inside
    brackets or quotes do not split)."""
    registry_name, _, extra = name.partition(":")
    options = {}
    for item in _split_top_level(extra):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"bad model option {item!r} in {name!r}; write NAME:key=value,...")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return registry_name, options


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets, braces and double quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "[{":
            depth += 1
        elif not quoted and char in "]}":
            depth -= 1
        elif char == "," and depth == 0 and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p]


def _build(name: str):
    """A model in train mode: a project model (see :func:`model_spec`) or braindecode's EEGNeX."""
    import warnings

    warnings.simplefilter("ignore")  # braindecode's montage / padding warnings
    if name == REFERENCE:
        from braindecode.models import EEGNeX

        return EEGNeX(n_chans=N_CHANS, n_outputs=1, n_times=N_TIMES, sfreq=SFREQ).train()
    from eegattn.models import build_model

    registry_name, options = model_spec(name)
    return build_model(
        registry_name, n_chans=N_CHANS, n_outputs=1, n_times=N_TIMES, sfreq=SFREQ, **options
    ).train()


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
    import statistics

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

    from eegattn.training.loop import make_loss
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

    def train_step(name):  # the training loop's own step (eegattn.training.loop)
        models[name].train()
        loop_step(models[name], optimizers[name], mse, x, y)

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


CHILDREN = {
    "speed": child_speed,
    "nrmse": child_nrmse,
    "release": child_release,
    "profile": child_profile,
}


# ----------------------------------------------------------------------------- driver side


def _label(name: str) -> str:
    return LABELS.get(name, name)


def _stats(values) -> dict:
    return common.summarize(values) if values else {}


def _fmt_range(s: dict, digits: int = 0, unit: str = "") -> str:
    if not s:
        return "-"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}-{f.format(s['max'])})"


def analyse_speed(speed: dict) -> dict:
    """Per model: windows/s, paired speed-ups vs the reference and FLOP fractions."""
    batch, peak = speed["batch"], speed["peak_flops"]
    ref_train, ref_infer = speed["train_s"].get(REFERENCE), speed["infer_s"].get(REFERENCE)
    rows = {}
    for name, info in speed["info"].items():
        row = {**info}
        if name in speed["skipped"]:
            row["skipped"] = speed["skipped"][name]
            rows[name] = row
            continue
        train, infer = speed["train_s"][name], speed["infer_s"][name]
        row["train_wps"] = _stats([batch / t for t in train])
        row["infer_wps"] = _stats([batch / t for t in infer])
        if ref_train:
            row["train_speedup"] = _stats([r / t for r, t in zip(ref_train, train, strict=True)])
            row["infer_speedup"] = _stats([r / t for r, t in zip(ref_infer, infer, strict=True)])
            # its FLOPs run at the measured matmul rate, against the reference as measured
            for kind, ref, flops in (
                ("train", ref_train, info["flops_train"]),
                ("infer", ref_infer, info["flops_forward"]),
            ):
                row[f"{kind}_at_peak"] = _stats(
                    [p / flops * r / batch for p, r in zip(peak, ref, strict=True)]
                )
        flops_s = [info["flops_train"] * batch / t for t in train]
        row["train_flops_s"] = _stats(flops_s)
        row["peak_fraction"] = _stats([f / p for f, p in zip(flops_s, peak, strict=True)])
        row["infer_peak_fraction"] = _stats(
            [info["flops_forward"] * batch / t / p for t, p in zip(infer, peak, strict=True)]
        )
        rows[name] = row
    return rows


def speed_table(rows: dict, speed: dict) -> str:
    headers = [
        "model",
        "params",
        "MFLOP/window fwd",
        "fwd+bwd",
        "train windows/s",
        "train speed-up",
        "infer windows/s",
        "infer speed-up",
        "train GFLOP/s",
        "% of matmul peak (train)",
        "speed-up at matmul rate train / infer",
    ]
    table = []
    for name, r in rows.items():
        base = [
            _label(name),
            f"{r['params']:,}",
            f"{r['flops_forward'] / 1e6:.1f}",
            f"{r['flops_train'] / 1e6:.1f}",
        ]
        if "skipped" in r:
            table.append(base + [r["skipped"]] + ["-"] * 6)
            continue
        gflops = {k: v / 1e9 for k, v in r["train_flops_s"].items() if k != "n"}
        pct = {k: 100 * v for k, v in r["peak_fraction"].items() if k != "n"}
        table.append(
            base
            + [
                _fmt_range(r["train_wps"], 1),
                _fmt_range(r.get("train_speedup", {}), 1, "x"),
                _fmt_range(r["infer_wps"], 1),
                _fmt_range(r.get("infer_speedup", {}), 1, "x"),
                _fmt_range(gflops, 1),
                _fmt_range(pct, 0, " %"),
                f"{r['train_at_peak']['median']:.1f}x / {r['infer_at_peak']['median']:.1f}x"
                if "train_at_peak" in r
                else "-",
            ]
        )
    return common.markdown_table(headers, table)


def combine_seeds(runs: list[dict]) -> dict:
    """One NRMSE cell from the runs of one model over split/training seeds: the means of
    ``nrmse``, ``mean_predictor``, ``oracle`` and ``fit_s`` (each seed is another subject split
    and initialisation; every model sees the same splits), ``per_seed`` NRMSEs and the runs.
    Not ok if any seed failed."""
    failed = [r for r in runs if r.get("status") != "ok"]
    if failed:
        return {
            "status": "error",
            "reason": f"seed {failed[0].get('seed')}: {failed[0].get('reason')}",
            "runs": runs,
        }
    cell = {
        "status": "ok",
        "trainer": "estimator",
        "seeds": [r.get("seed") for r in runs],
        "per_seed": [r["nrmse"] for r in runs],
        "runs": runs,
    }
    for key in ("nrmse", "mean_predictor", "oracle", "fit_s"):
        if all(key in r for r in runs):
            cell[key] = sum(r[key] for r in runs) / len(runs)
    return cell


# what two NRMSE runs must share for their splits to be pooled (seeds give the splits)
MERGE_SETTINGS = ("epochs", "train_batch", "lr", "n_subjects", "test_fraction", "trainer",
                  "threads", "release_seed")


def merge_nrmse(results: list[tuple[str, dict]]) -> tuple[dict, list[str]]:
    """Pool the NRMSE runs of several benchmark JSONs (``(path, json)`` pairs) into one cell
    per model, as if one run had trained every model on every split seed. Runs are
    deterministic and EEGNeX costs ~20 min per split, so splits are added run by run, and a new
    model variant can be run alone (``--skip-reference``) and compared with the EEGNeX splits
    of earlier runs. The runs must share the release and the training settings, and no model
    may repeat a seed. A model whose seeds differ from the reference's is left out (it did not
    see the same splits). Returns (cells, notes)."""
    if len(results) < 2:
        raise ValueError("--merge-nrmse needs at least two benchmark JSON files")
    first_path, first = results[0]
    for path, data in results:
        if not isinstance(data.get("nrmse"), dict):
            raise ValueError(f"{path} holds no NRMSE results (was it run with --skip-nrmse?)")
    for path, data in results[1:]:
        for key in MERGE_SETTINGS:
            a, b = first.get("args", {}).get(key), data.get("args", {}).get(key)
            if a != b:
                raise ValueError(f"{path} was run with {key}={b}, {first_path} with {key}={a}; "
                                 "only runs with the same settings can be pooled")
        for key in ("folder", "n_windows"):
            a, b = first.get("release", {}).get(key), data.get("release", {}).get(key)
            if a != b:
                raise ValueError(f"{path} used release {key} {b}, {first_path} {a}; only runs "
                                 "on the same release can be pooled")
    runs: dict[str, list] = {}
    for _, data in results:
        for model, cell in data["nrmse"].items():
            runs.setdefault(model, []).extend(cell.get("runs", []))
    if NRMSE_REFERENCE not in runs:
        raise ValueError(f"{NRMSE_REFERENCE} is in none of the files; the target compares "
                         "against it on the same splits")
    runs[NRMSE_REFERENCE] = runs.pop(NRMSE_REFERENCE)  # last, as in a benchmark run
    for model, model_runs in runs.items():
        seeds = [r.get("seed") for r in model_runs]
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise ValueError(f"{model}: split seed(s) {repeated} appear in more than one file; "
                             "pool runs over different seeds")
    reference_seeds = sorted(r.get("seed") for r in runs[NRMSE_REFERENCE])
    cells, notes = {}, []
    for model, model_runs in runs.items():
        seeds = sorted(r.get("seed") for r in model_runs)
        if seeds != reference_seeds:
            notes.append(f"{model} left out: split seeds {seeds}, {NRMSE_REFERENCE}'s "
                         f"{reference_seeds}")
            continue
        cells[model] = combine_seeds(sorted(model_runs, key=lambda r: r.get("seed")))
    return cells, notes


def nrmse_table(cells: dict) -> str:
    rows = []
    reference = None
    for name, cell in cells.items():
        if cell.get("status") != "ok":
            rows.append([_label(name), f"failed: {cell.get('reason')}", "-", "-"])
            continue
        reference = reference or cell
        rows.append(
            [
                _label(name),
                f"{cell['nrmse']:.4f}",
                _per_seed(cell, "nrmse"),
                f"{cell['fit_s']:.0f} s",
            ]
        )
    if reference:
        for label, key in (
            ("mean predictor (training mean)", "mean_predictor"),
            ("synthetic oracle", "oracle"),
        ):
            if key in reference:
                rows.append([label, f"{reference[key]:.4f}", _per_seed(reference, key), "-"])
    return common.markdown_table(
        ["model", "test NRMSE (mean over seeds)", "per seed", "fit time (mean)"], rows
    )


def _per_seed(cell: dict, key: str) -> str:
    return " / ".join(f"{r[key]:.3f}" for r in cell.get("runs", [cell]) if key in r)


def summary_table(rows: dict, nrmse_cells: dict | None) -> str:
    """One row per model: the speed columns and the NRMSE (EEGNeX's from ``eegnex``)."""
    names = list(dict.fromkeys([*rows, *(nrmse_cells or {})]))
    if REFERENCE in names and NRMSE_REFERENCE in names and NRMSE_REFERENCE not in rows:
        names.remove(NRMSE_REFERENCE)  # braindecode's EEGNeX row carries the eegnex NRMSE
    table = []
    for name in names:
        r = rows.get(name, {})
        ok = "train_wps" in r
        cell = (nrmse_cells or {}).get(NRMSE_REFERENCE if name == REFERENCE else name, {})
        table.append(
            [
                "EEGNeX (braindecode; NRMSE: eegnex)" if name == REFERENCE else _label(name),
                f"{r['train_wps']['median']:.1f}" if ok else "-",
                f"{r['train_speedup']['median']:.1f}x" if ok and "train_speedup" in r else "-",
                f"{r['infer_wps']['median']:.1f}" if ok else "-",
                f"{r['infer_speedup']['median']:.1f}x" if ok and "infer_speedup" in r else "-",
                f"{r['flops_train'] / 1e6:.0f}" if "flops_train" in r else "-",
                f"{100 * r['peak_fraction']['median']:.0f} %" if ok else "-",
                f"{cell['nrmse']:.3f}" if cell.get("status") == "ok" else "-",
            ]
        )
    ref = next((c for c in (nrmse_cells or {}).values() if c.get("status") == "ok"), None)
    if ref:
        table.append(["mean predictor", *["-"] * 6, f"{ref['mean_predictor']:.3f}"])
    return common.markdown_table(
        [
            "model",
            "train win/s",
            "vs EEGNeX",
            "infer win/s",
            "vs EEGNeX",
            "MFLOP/win (train)",
            "% matmul peak",
            "test NRMSE",
        ],
        table,
    )


def nrmse_check(model: str, nrmse_cells: dict) -> tuple[str, bool | None]:
    """(text, passed) of "``model``'s mean NRMSE <= EEGNeX's" over the same split seeds."""
    a, b = nrmse_cells.get(model, {}), nrmse_cells.get(NRMSE_REFERENCE, {})
    if a.get("status") == "ok" and b.get("status") == "ok":
        n = len(a.get("per_seed", [a["nrmse"]]))
        diffs = [x - y for x, y in zip(a.get("per_seed", []), b.get("per_seed", []),
                                       strict=False)]
        wins = sum(d <= 0 for d in diffs)
        seeds = f"mean over {n} seeds, lower or equal on {wins} of {n}; " if n > 1 else ""
        if len(diffs) > 1:  # how far the mean difference is from noise
            se = statistics.stdev(diffs) / math.sqrt(len(diffs))
            seeds += f"paired difference {statistics.fmean(diffs):+.4f} (standard error " \
                     f"{se:.4f}); "
        return (
            f"{model} NRMSE {a['nrmse']:.4f} <= EEGNeX NRMSE {b['nrmse']:.4f} "
            f"({seeds}equal epoch budget)",
            a["nrmse"] <= b["nrmse"],
        )
    if model in nrmse_cells:
        return (f"{model} NRMSE <= EEGNeX NRMSE: a training run failed", False)
    return (f"{model} NRMSE <= EEGNeX NRMSE: not measured", None)


def target_checks(rows: dict, nrmse_cells: dict | None) -> list[tuple[str, bool | None]]:
    """(text, passed) per target; passed None = not measured in this run."""
    checks: list[tuple[str, bool | None]] = []
    for model in TARGET_MODELS:
        r = rows.get(model, {})
        for key, target, what in (
            ("train_speedup", TARGET_TRAIN_SPEEDUP, "trains"),
            ("infer_speedup", TARGET_INFER_SPEEDUP, "infers"),
        ):
            s = r.get(key)
            if not s:
                checks.append(
                    (f"{model} {what} >= {target:g}x faster than EEGNeX: not measured", None)
                )
                continue
            at_peak = r[key.replace("speedup", "at_peak")]["median"]
            checks.append(
                (
                    f"{model} {what} {s['median']:.1f}x faster than EEGNeX (paired median, "
                    f"range {s['min']:.1f}-{s['max']:.1f}x; target >= {target:g}x; at the "
                    f"measured matmul rate its FLOPs would give {at_peak:.1f}x)",
                    s["median"] >= target,
                )
            )
        if nrmse_cells is None:
            checks.append((f"{model} NRMSE <= EEGNeX NRMSE: not measured", None))
            continue
        checks.append(nrmse_check(model, nrmse_cells))
    for name in PROJECT_MODELS:
        s = rows.get(name, {}).get("peak_fraction")
        if not s:
            checks.append(
                (f"{name} reaches >= 50 % of the matmul peak in training: not measured", None)
            )
            continue
        checks.append(
            (
                f"{name} training reaches {100 * s['median']:.0f} % of the measured "
                f"matmul FLOP/s (range {100 * s['min']:.0f}-{100 * s['max']:.0f} %; "
                f"target >= {100 * TARGET_PEAK_FRACTION:.0f} %)",
                s["median"] >= TARGET_PEAK_FRACTION,
            )
        )
    return checks


def plot(rows: dict, nrmse_cells: dict | None, peak: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, r in rows.items() if "skipped" not in r]
    labels = [_label(n).replace(" (", "\n(") for n in names]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    if not names:
        for ax in axes[:2]:
            ax.text(0.5, 0.5, "speed not measured", ha="center", va="center")
            ax.set_axis_off()
    else:
        _plot_speed(axes[0], axes[1], rows, names, labels, peak)
    _plot_nrmse(axes[2], nrmse_cells)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    common.save_figure(fig, path)
    plt.close(fig)


def _plot_speed(ax, ax_peak, rows, names, labels, peak) -> None:
    width = 0.4
    for offset, key, what in (
        (-width / 2, "train_wps", "training"),
        (width / 2, "infer_wps", "inference"),
    ):
        med = [rows[n][key]["median"] for n in names]
        err = [
            [m - rows[n][key]["min"] for n, m in zip(names, med, strict=True)],
            [rows[n][key]["max"] - m for n, m in zip(names, med, strict=True)],
        ]
        ax.bar([i + offset for i in range(len(names))], med, width, yerr=err, capsize=3, label=what)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), labels, fontsize=7)
    ax.set_ylabel("windows / s (median, min-max)")
    ax.legend()
    ax.set_title("throughput")

    ax = ax_peak
    pct = [100 * rows[n]["peak_fraction"]["median"] for n in names]
    ax.bar(range(len(names)), pct, color="tab:green")
    ax.axhline(100 * TARGET_PEAK_FRACTION, color="k", ls="--", lw=1, label="target 50 %")
    ax.set_xticks(range(len(names)), labels, fontsize=7)
    ax.set_ylabel("% of measured matmul FLOP/s (training)")
    ax.set_title(f"FLOP efficiency (peak {peak['median'] / 1e9:.0f} GFLOP/s)")
    ax.legend()


def _plot_nrmse(ax, nrmse_cells) -> None:
    if nrmse_cells:
        ok = {n: c for n, c in nrmse_cells.items() if c.get("status") == "ok"}
        ax.bar(range(len(ok)), [c["nrmse"] for c in ok.values()], color="tab:purple")
        ax.set_xticks(range(len(ok)), [_label(n).replace(" (", "\n(") for n in ok], fontsize=7)
        any_cell = next(iter(ok.values()), None)
        if any_cell:
            ax.axhline(any_cell["mean_predictor"], color="k", ls="--", lw=1, label="mean predictor")
            if "oracle" in any_cell:
                ax.axhline(any_cell["oracle"], color="tab:red", ls=":", lw=1, label="oracle")
            ax.legend(loc="lower right")
        ax.set_ylabel("test NRMSE (challenge 1, held-out subjects)")
        ax.set_title("NRMSE at an equal epoch budget")
    else:
        ax.text(0.5, 0.5, "NRMSE not measured", ha="center", va="center")
        ax.set_axis_off()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: batch 32, 2 repeats, a small 6-subject release, 1 epoch",
    )
    parser.add_argument("--skip-nrmse", action="store_true", help="speed and FLOPs only")
    parser.add_argument("--skip-speed", action="store_true", help="NRMSE only")
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help=f"speed models (default: {' '.join(DEFAULT_SPEED_MODELS)}); "
        f"{REFERENCE} is braindecode's EEGNeX and is always added",
    )
    parser.add_argument(
        "--nrmse-models",
        nargs="+",
        default=None,
        help=f"NRMSE models (default: {' '.join(NRMSE_MODELS)}); {NRMSE_REFERENCE} is added unless "
        "--skip-reference",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5)")
    parser.add_argument("--batch", type=int, default=None, help="speed batch (default 256)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's own choice)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="NRMSE epoch budget, equal for every model (default 2)",
    )
    parser.add_argument("--train-batch", type=int, default=32, help="NRMSE batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="NRMSE learning rate (AdamW)")
    parser.add_argument(
        "--n-subjects",
        type=int,
        default=None,
        help="subjects of the synthetic release (default 12)",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.25,
        help="fraction of subjects held out for the NRMSE",
    )
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument(
        "--nrmse-seeds",
        type=int,
        nargs="+",
        default=None,
        metavar="SEED",
        help="NRMSE over several split and training seeds on one release (default: --seed); "
        "every model gets the same splits, and the NRMSE target compares the means",
    )
    parser.add_argument(
        "--release-seed",
        type=int,
        default=None,
        help="seed of the synthetic release (default: --seed); keep it fixed to compare "
        "training seeds on one release",
    )
    # every model trains through the estimator (the one training loop); kept in the recorded
    # arguments so runs of earlier versions still pool with --merge-nrmse
    parser.set_defaults(trainer="estimator")
    parser.add_argument(
        "--root",
        default=None,
        help="folder of the synthetic release (default: <project cache>/bench-models/s<N>)",
    )
    parser.add_argument(
        "--memory-fraction",
        type=float,
        default=0.7,
        help="skip a speed model needing more than this share of free memory",
    )
    parser.add_argument(
        "--profile",
        nargs="+",
        default=None,
        metavar="MODEL",
        help="only profile one training step of these models and exit",
    )
    parser.add_argument("--profile-batch", type=int, default=64)
    parser.add_argument(
        "--profile-mode",
        choices=("train", "infer"),
        default="train",
        help="profile a training step (default) or an inference pass",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="per child, seconds")
    parser.add_argument(
        "--merge-nrmse",
        nargs="+",
        default=None,
        metavar="JSON",
        help="pool the NRMSE runs of earlier benchmark JSONs over different split seeds "
        "(same release and settings) and print the table and checks; nothing is trained",
    )
    parser.add_argument(
        "--skip-reference",
        action="store_true",
        help="do not train EEGNeX for the NRMSE; pool its splits from earlier runs with "
        "--merge-nrmse",
    )
    parser.add_argument("--out", default=None, help="JSON path (PNG next to it)")
    args = parser.parse_args(argv)
    if args.merge_nrmse:
        if not args.out:
            parser.error("--merge-nrmse needs --out (a new JSON path)")
        args.out = Path(args.out)
        if any(Path(p).resolve() == args.out.resolve() for p in args.merge_nrmse):
            parser.error("--out must not be one of the --merge-nrmse inputs")
        return args
    quick = args.quick
    args.repeats = args.repeats or (2 if quick else 5)
    args.batch = args.batch or (32 if quick else BATCH)
    args.epochs = args.epochs or (1 if quick else 2)
    args.n_subjects = args.n_subjects or (6 if quick else 12)
    for name in ("repeats", "batch", "epochs", "n_subjects", "train_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.skip_speed and args.skip_nrmse:
        parser.error("--skip-speed and --skip-nrmse leave nothing to run")
    if not 0 < args.test_fraction < 1:
        parser.error("--test-fraction must be in (0, 1)")
    args.nrmse_seeds = list(dict.fromkeys(args.nrmse_seeds or [args.seed]))
    models = list(args.models or DEFAULT_SPEED_MODELS)
    if REFERENCE not in models:
        models.append(REFERENCE)
    args.models = list(dict.fromkeys(models))
    nrmse_models = list(args.nrmse_models or NRMSE_MODELS)
    if NRMSE_REFERENCE not in nrmse_models and not args.skip_reference:
        nrmse_models.append(NRMSE_REFERENCE)
    args.nrmse_models = list(dict.fromkeys(nrmse_models))
    for name in {*args.models, *args.nrmse_models, *(args.profile or ())} - {REFERENCE}:
        try:
            registry_name, _ = model_spec(name)
        except ValueError as err:
            parser.error(str(err))
        from eegattn.models import available_models

        if registry_name not in available_models():
            parser.error(
                f"unknown model {name!r}: use {', '.join(available_models())}, "
                f"{REFERENCE} or NAME:key=value,..."
            )
    stem = "models-quick" if quick else "models"
    args.out = Path(args.out) if args.out else common.RESULTS_DIR / f"{stem}.json"
    return args


def _project_cache() -> Path:
    repo = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("EEGATTN_CACHE", "").strip() or repo / "cache")


def run_profiles(args) -> int:
    for name in args.profile:
        res = common.run_child(
            __file__,
            {
                "kind": "profile",
                "model": name,
                "batch": args.profile_batch,
                "mode": args.profile_mode,
                "top": 12,
                "threads": args.threads,
            },
            args.timeout,
        )
        if res.get("status") != "ok":
            print(f"{name}: profile failed: {res.get('reason')}")
            continue
        what = "one training step" if args.profile_mode == "train" else "one inference pass"
        print(
            f"### {_label(name)}: {what}, batch {args.profile_batch}, "
            f"{res['total_ms']:.0f} ms self CPU in all, "
            f"{100 * res['matmul_share']:.0f} % of it in convolutions and matrix products\n"
        )
        print(
            common.markdown_table(
                ["op", "self ms", "share", "calls"],
                [
                    [o["op"], f"{o['self_ms']:.0f}", f"{100 * o['share']:.1f} %", o["calls"]]
                    for o in res["ops"]
                ],
            )
        )
        print()
    return 0


def main(argv=None) -> int:
    spec = common.child_spec()
    if spec is not None:
        try:
            common.report_child(CHILDREN[spec["kind"]](spec))
        except Exception as err:  # reported to the driver, which prints it
            common.report_child({"status": "error", "reason": f"{type(err).__name__}: {err}"})
        return 0

    args = parse_args(argv)
    if args.merge_nrmse:
        return run_merge(args)
    if args.profile:
        return run_profiles(args)
    started = time.perf_counter()
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"model benchmark{' (quick)' if args.quick else ''}: {machine}; batch {args.batch}, "
        f"{args.repeats} repeats\n",
        flush=True,
    )
    if args.batch != BATCH:
        print(
            f"note: the issue's targets are defined at batch {BATCH}; this run uses {args.batch}\n"
        )
    results: dict = {"machine": machine, "args": {k: str(v) for k, v in vars(args).items()}}

    rows, peak, speed_failed = {}, {}, False
    if not args.skip_speed:
        rows, peak = run_speed(args, results)
        speed_failed = not rows

    nrmse_cells = None
    if not args.skip_nrmse:
        nrmse_cells = run_nrmse(args, results)
    if rows and nrmse_cells:
        print("### Summary (medians)\n")
        print(summary_table(rows, nrmse_cells))
        print()
    checks = target_checks(rows, nrmse_cells)
    if speed_failed:
        checks.insert(0, ("the speed run completed", False))
    print("### Targets\n")
    for text, passed in checks:
        print(f"{'PASS' if passed else 'FAIL' if passed is False else 'NOT RUN'}  {text}")
    results["checks"] = [{"check": t, "pass": p} for t, p in checks]
    results["wall_s"] = time.perf_counter() - started
    common.write_atomic(args.out, json.dumps(results, indent=1, default=str))
    plot(
        rows,
        nrmse_cells,
        peak,
        args.out.with_suffix(".png"),
        f"eegattn model benchmark: {machine}, batch {args.batch}",
    )
    print(
        f"\nwrote {args.out} and {args.out.with_suffix('.png').name}; "
        f"{results['wall_s'] / 60:.1f} min in all"
    )
    return 0 if all(p for _, p in checks) else 1


def run_merge(args) -> int:
    """--merge-nrmse: the pooled NRMSE table and checks of earlier runs."""
    loaded = []
    for path in args.merge_nrmse:
        try:
            loaded.append((path, json.loads(Path(path).read_text())))
        except (OSError, json.JSONDecodeError) as err:
            print(f"error: cannot read {path} ({err}); give benchmark JSON files",
                  file=sys.stderr)
            return 2
    try:
        cells, notes = merge_nrmse(loaded)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    n = len(next(iter(cells.values())).get("per_seed", []))
    print(f"### NRMSE pooled over {n} split seeds from {', '.join(args.merge_nrmse)}\n")
    print(nrmse_table(cells))
    for note in notes:
        print(f"note: {note}")
    # every pooled model against the reference (a variant may be what a preset becomes)
    checks = [nrmse_check(m, cells) for m in cells if m != NRMSE_REFERENCE]
    print("\n### Targets\n")
    for text, passed in checks:
        print(f"{'PASS' if passed else 'FAIL' if passed is False else 'NOT RUN'}  {text}")
    results = {"merged_from": list(args.merge_nrmse), "nrmse": cells,
               "checks": [{"check": t, "pass": p} for t, p in checks]}
    common.write_atomic(args.out, json.dumps(results, indent=1, default=str))
    print(f"\nwrote {args.out}")
    return 0 if all(p for _, p in checks if p is not None) else 1


def run_speed(args, results: dict) -> tuple[dict, dict]:
    """The paired speed child; returns (rows per model, peak matmul FLOP/s stats)."""
    speed = common.run_child(
        __file__,
        {
            "kind": "speed",
            "models": args.models,
            "batch": args.batch,
            "repeats": args.repeats,
            "warmup": 1,
            "threads": args.threads,
            "matmul_size": MATMUL_SIZE,
            "memory_fraction": args.memory_fraction,
        },
        args.timeout,
    )
    results["speed_raw"] = speed
    if speed.get("status") != "ok":
        print(f"speed run failed: {speed.get('reason')}")
        rows, peak = {}, {}
    else:
        rows = analyse_speed(speed)
        peak = _stats(speed["peak_flops"])
        results["speed"] = rows
        results["peak_matmul_flops"] = peak
        print(
            f"### Speed and FLOPs (CPU, {speed['threads']} threads, torch {speed['torch']}, "
            f"batch {speed['batch']}, {args.repeats} paired repeats; median (min-max))\n"
        )
        print(speed_table(rows, speed))
        print(
            f"\nmatmul peak: float32 torch.mm {MATMUL_SIZE}x{MATMUL_SIZE}, "
            f"{peak['median'] / 1e9:.1f} GFLOP/s ({peak['min'] / 1e9:.1f}-"
            f"{peak['max'] / 1e9:.1f}); speed-ups are vs {_label(REFERENCE)}, paired per "
            f"repeat; FLOPs counted by torch.utils.flop_counter (matmul-like ops only).\n",
            flush=True,
        )
    return rows, peak


def run_nrmse(args, results: dict) -> dict:
    root = (
        Path(args.root)
        if args.root
        else _project_cache() / "bench-models" / ("quick" if args.quick else f"s{args.n_subjects}")
    )
    cache_dir = _project_cache() / "windows"
    release_options = (
        {"trials_per_run": (12, 16), "rest_seconds": 20.0, "tasks": ("contrastChangeDetection",)}
        if args.quick
        else {}
    )
    made = common.run_child(
        __file__,
        {
            "kind": "release",
            "root": str(root),
            "n_subjects": args.n_subjects,
            "seed": args.seed if args.release_seed is None else args.release_seed,
            "cache_dir": str(cache_dir),
            "release_options": release_options,
        },
        args.timeout,
    )
    results["release"] = made
    if made.get("status") != "ok":
        print(f"could not prepare the synthetic release: {made.get('reason')}\n")
        return {n: {"status": "error", "reason": made.get("reason")} for n in args.nrmse_models}
    print(
        f"### NRMSE, challenge 1 (synthetic release {made['folder']}: "
        f"{made['n_windows']} windows of {made['n_subjects_with_windows']} subjects; "
        f"{100 * args.test_fraction:.0f} % of subjects held out; {args.epochs} epoch(s), "
        f"batch {args.train_batch}, lr {args.lr:g}, split and training seed(s) "
        f"{', '.join(map(str, args.nrmse_seeds))} for every model)\n",
        flush=True,
    )
    cells = {}
    for name in args.nrmse_models:
        runs = []
        for seed in args.nrmse_seeds:
            spec = {
                "kind": "nrmse",
                "model": name,
                "root": str(root),
                "cache_dir": str(cache_dir),
                "epochs": args.epochs,
                "batch": args.train_batch,
                "lr": args.lr,
                "seed": seed,
                "test_fraction": args.test_fraction,
                "trainer": args.trainer,
                "threads": args.threads,
            }
            cell = common.run_child(__file__, spec, args.timeout)
            runs.append({**cell, "seed": seed})
            print(
                f"  {_label(name)}, seed {seed}: "
                + (
                    f"NRMSE {cell['nrmse']:.4f} in {cell['fit_s']:.0f} s"
                    if cell.get("status") == "ok"
                    else f"failed: {cell.get('reason')}"
                ),
                flush=True,
            )
        cells[name] = combine_seeds(runs)
    results["nrmse"] = cells
    print()
    print(nrmse_table(cells))
    print()
    return cells


if __name__ == "__main__":
    sys.exit(main())
