"""Play the challenge server's harness on an unpacked submission, in a fresh interpreter.

Run by `eegattn validate-submission` as ``python -I harness.py JOB.json``. Standard library and
torch only, Python 3.10 syntax and torch 2.2's public API, so that it can run under the
server's versions too. ``eegattn`` and ``braindecode`` are made unimportable before anything
else happens (the server had neither this project nor, for our purposes, braindecode).

The job file (JSON) gives: ``submission_dir``, ``device``, ``sfreq``, ``batch_sizes``,
``timing_batch``, ``seed``, ``result_path`` and optionally ``score``: per challenge
``{"x_path", "n", "n_chans", "n_times", "batch_size", "pred_path"}`` (raw little-endian
float32 windows in, float32 predictions out).

It records observations, not verdicts: ``problems`` (code, challenge, detail) and
``measurements``; `eegattn.submission.validate` turns them into findings with fixes. The result
file is rewritten after every step, so a crash still leaves what was learned.
"""

import array
import importlib.abc
import json
import os
import sys
import time
import traceback

BLOCKED = ("eegattn", "braindecode")
BLOCK_NOTE = "not available on the challenge server (blocked by eegattn validate-submission)"


class _BlockImports(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in BLOCKED:
            raise ModuleNotFoundError(
                "No module named %r: %s" % (fullname, BLOCK_NOTE), name=fullname
            )
        return None


sys.meta_path.insert(0, _BlockImports())

RESULT = {"python": sys.version.split()[0], "problems": [], "measurements": {}, "done": False}
RESULT_PATH = None


def save():
    if RESULT_PATH is None:
        return
    tmp = RESULT_PATH + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(RESULT, fh, indent=1)
    os.replace(tmp, RESULT_PATH)


def problem(code, detail, challenge=None, **extra):
    entry = {"code": code, "challenge": challenge, "detail": detail}
    entry.update(extra)
    RESULT["problems"].append(entry)
    save()


def describe(err):
    return "%s: %s" % (type(err).__name__, err)


def random_windows(torch, batch, seed, device):
    """Volts-scale random windows (~20 uV) with a flat last channel, like HBN's Cz."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 129, 200, generator=generator) * 20e-6
    x[:, -1] = 0.0
    return x.to(device)


def synchronize(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def call(torch, model, x):
    with torch.inference_mode():
        return model(x)


def check_output(torch, out, batch, k):
    """True when ``out`` is a finite float (batch, 1) tensor; records a problem otherwise."""
    if not isinstance(out, torch.Tensor):
        problem("output_type", "returned %s, not a torch.Tensor" % type(out).__name__, k)
        return False
    shape = tuple(out.shape)
    if shape != (batch, 1):
        problem(
            "output_shape",
            "returned shape %s for a batch of %d" % (shape, batch),
            k,
            batch=batch,
            shape=list(shape),
        )
        return False
    if not out.is_floating_point():
        problem("output_dtype", "returned dtype %s" % out.dtype, k)
        return False
    if not bool(torch.isfinite(out).all()):
        n_bad = int((~torch.isfinite(out)).sum())
        problem("non_finite", "%d of %d outputs are NaN or Inf" % (n_bad, batch), k)
        return False
    return True


def check_model(torch, submission, k, job, device, measurements):
    method = "get_model_challenge_%d" % k
    getter = getattr(submission, method, None)
    if getter is None:
        problem("missing_method", "Submission has no method %s()" % method, k)
        return None
    start = time.perf_counter()
    try:
        model = getter()
    except FileNotFoundError as err:
        problem("weights_not_found", describe(err), k)
        return None
    except Exception as err:  # noqa: BLE001 (report whatever the submission raises)
        problem("load_failed", describe(err), k, traceback=traceback.format_exc(limit=6))
        return None
    measurements["load_s"] = time.perf_counter() - start
    if not isinstance(model, torch.nn.Module):
        problem(
            "not_a_module",
            "%s() returned %s, not a torch.nn.Module" % (method, type(model).__name__),
            k,
        )
        return None
    try:
        model.eval()
    except Exception as err:  # noqa: BLE001
        problem("eval_failed", describe(err), k)
        return None
    try:
        devices = {p.device.type for p in model.parameters()} | {
            b.device.type for b in model.buffers()
        }
    except Exception:  # noqa: BLE001 (a module may refuse to list them)
        devices = set()
    if devices and devices != {device.type}:
        problem("wrong_device", "parameters on %s, DEVICE is %s" % (sorted(devices), device), k)
    measurements["n_parameters"] = sum(p.numel() for p in model.parameters())

    outputs = {}
    for i, batch in enumerate(job["batch_sizes"]):
        x = random_windows(torch, batch, job["seed"] + 10 * k + i, device)
        before = x.clone()
        try:
            out = call(torch, model, x)
        except Exception as err:  # noqa: BLE001
            problem(
                "forward_failed",
                "on a batch of %d: %s" % (batch, describe(err)),
                k,
                traceback=traceback.format_exc(limit=6),
            )
            return None
        if not torch.equal(x, before):
            problem("input_modified", "the model changed its input batch in place", k)
        if not check_output(torch, out, batch, k):
            return None
        outputs[batch] = (x, out)

    # determinism and timing on the largest batch
    batch = max(outputs)
    x, first = outputs[batch]
    synchronize(torch, device)
    start = time.perf_counter()
    second = call(torch, model, x)
    synchronize(torch, device)
    elapsed = time.perf_counter() - start
    measurements["infer_s"] = elapsed
    measurements["infer_batch"] = batch
    if not (isinstance(second, torch.Tensor) and second.shape == first.shape):
        problem("non_deterministic", "a second call returned another shape", k)
        return None
    diff = float((second - first).abs().max())
    measurements["repeat_max_abs_diff"] = diff
    if diff > 1e-6 * (1.0 + float(first.abs().max())):
        problem("non_deterministic", "two calls on the same batch differ by up to %.3g" % diff, k)

    # a window's prediction must not depend on the other windows of its batch
    if max(outputs) > 1:
        x_big, out_big = outputs[max(outputs)]
        alone = call(torch, model, x_big[:1])
        if isinstance(alone, torch.Tensor) and alone.shape == (1, 1):
            gap = float((alone[0] - out_big[0]).abs().max())
            measurements["batch_dependence"] = gap
            if gap > 1e-4 * (1.0 + float(out_big.abs().max())):
                problem(
                    "batch_dependent",
                    "window 0 predicted alone vs in a batch of %d differs by %.3g"
                    % (max(outputs), gap),
                    k,
                )

    timing_batch = job.get("timing_batch")
    if timing_batch and timing_batch != batch:
        x = random_windows(torch, timing_batch, job["seed"] + 99, device)
        call(torch, model, x)
        synchronize(torch, device)
        start = time.perf_counter()
        call(torch, model, x)
        synchronize(torch, device)
        measurements["infer_s"] = time.perf_counter() - start
        measurements["infer_batch"] = timing_batch
    return model


def score(torch, model, spec, device, k, measurements):
    """Predict the windows of ``spec`` in order, ``batch_size`` at a time; write float32."""
    n, n_chans, n_times = spec["n"], spec["n_chans"], spec["n_times"]
    per_window = n_chans * n_times * 4
    start = time.perf_counter()
    with open(spec["x_path"], "rb") as src, open(spec["pred_path"], "wb") as dst:
        done = 0
        while done < n:
            batch = min(spec["batch_size"], n - done)
            raw = bytearray(src.read(batch * per_window))
            x = torch.frombuffer(raw, dtype=torch.float32).reshape(batch, n_chans, n_times)
            out = call(torch, model, x.to(device))
            if not isinstance(out, torch.Tensor) or out.numel() != batch:
                problem(
                    "score_failed",
                    "windows %d..%d gave %r" % (done, done + batch, getattr(out, "shape", out)),
                    k,
                )
                return
            dst.write(array.array("f", out.detach().float().reshape(-1).cpu().tolist()).tobytes())
            done += batch
    measurements["score_s"] = time.perf_counter() - start
    measurements["score_n"] = n


def main(job_path):
    global RESULT_PATH
    with open(job_path) as fh:
        job = json.load(fh)
    RESULT_PATH = job["result_path"]
    save()
    try:
        import torch
    except Exception as err:  # noqa: BLE001
        problem("no_torch", describe(err))
        return
    RESULT["torch"] = torch.__version__
    try:
        device = torch.device(job["device"])
    except Exception as err:  # noqa: BLE001
        problem("bad_device", describe(err))
        return
    save()

    sys.path.insert(0, job["submission_dir"])
    start = time.perf_counter()
    try:
        import submission as module  # noqa: F401 (the harness's import)
    except Exception as err:  # noqa: BLE001
        blocked = BLOCK_NOTE in str(err)
        problem(
            "import_blocked" if blocked else "import_failed",
            describe(err),
            traceback=traceback.format_exc(limit=6),
        )
        return
    RESULT["measurements"]["import_s"] = time.perf_counter() - start
    cls = getattr(module, "Submission", None)
    if cls is None:
        classes = sorted(
            n
            for n, v in vars(module).items()
            if isinstance(v, type) and v.__module__ == "submission"
        )
        problem("no_submission_class", "submission.py defines no class Submission", classes=classes)
        return
    try:
        submission = cls(job["sfreq"], device)
    except Exception as err:  # noqa: BLE001
        problem("init_failed", describe(err), traceback=traceback.format_exc(limit=6))
        return

    for k in (1, 2):
        measurements = {}
        RESULT["measurements"]["challenge_%d" % k] = measurements
        model = check_model(torch, submission, k, job, device, measurements)
        save()
        spec = (job.get("score") or {}).get(str(k))
        if model is not None and spec:
            try:
                score(torch, model, spec, device, k, measurements)
            except Exception as err:  # noqa: BLE001
                problem("score_failed", describe(err), k, traceback=traceback.format_exc(limit=6))
        save()


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    finally:
        RESULT["done"] = True
        save()
