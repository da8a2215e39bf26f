"""Submission packaging and validation (issue 6).

Small models of every family are packed from run folders and validated by the harness in a
fresh ``python -I`` process where eegattn and braindecode cannot be imported; broken zips are
each caught with the right message. Set ``EEGATTN_SUBMISSION_PYTHON`` to a Python 3.10 +
torch 2.2 interpreter to run the same validations under the server's versions.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import json
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from eegattn.attention import available_attention
from eegattn.challenge import crop_starts
from eegattn.models import build_model
from eegattn.submission import package_submission, validate_submission
from eegattn.submission.package import (
    check_run_config,
    export_model,
    write_submission_zip,
)
from eegattn.training.metrics import nrmse
from eegattn.training.runs import create_run_dir, save_run

FAST = {"batch_sizes": (1, 4), "timing_batch": None}  # validation batches for tests
CHECK = (1, 3)  # export comparison batches for tests
SMALL_OPTIONS = {
    "lightweight": {"conv_channels": (16, 32), "channel_reduction": 8, "head_hidden": (8,)},
    "improved": {"conv_channels": (16, 32, 32), "channel_reduction": 8, "head_hidden": (8,)},
    "lightweight_noattn": {"conv_channels": (16, 32), "head_hidden": (8,)},
    "lightweight_fast": {"conv_channels": (16, 32), "channel_reduction": 8, "head_hidden": (8,)},
    "eegnex": {"eegnex_options": {"filter_1": 4, "filter_2": 8}},
}
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def volts(batch: int, n_times: int = 200, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 129, n_times, generator=g) * 20e-6
    x[:, -1] = 0.0  # flat reference channel, like HBN's Cz
    return x


def small_model(name: str, **options) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(name, **{**SMALL_OPTIONS[name], **options})
    return model.eval()


def make_run(root: Path, name: str, challenge: int, n_chans: int = 129, **options) -> Path:
    torch.manual_seed(challenge)
    opts = {**SMALL_OPTIONS[name], **options}
    model = build_model(name, n_chans=n_chans, **opts)
    run = create_run_dir(root, f"{name}-c{challenge}")
    save_run(run, model, config={"model": name, "model_options": opts, "challenge": challenge})
    return run


def quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def rezip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def traced_bytes(function) -> bytes:
    """A TorchScript archive of ``function`` (traced on volts windows)."""
    traced = quiet(torch.jit.trace, function, volts(2), check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# fixtures: two packed zips covering the four model families


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "lightweight": make_run(root, "lightweight", 1, attention="local"),
        "improved": make_run(root, "improved", 2, attention="standard"),
        "lightweight_noattn": make_run(root, "lightweight_noattn", 1),
        "eegnex": make_run(root, "eegnex", 2),
    }


@pytest.fixture(scope="module")
def zips(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("zips")
    pairs = {"attention": ("lightweight", "improved"), "plain": ("lightweight_noattn", "eegnex")}
    return {
        key: quiet(
            package_submission,
            runs[c1],
            runs[c2],
            out / f"{key}.zip",
            check_batch_sizes=CHECK,
        ).path
        for key, (c1, c2) in pairs.items()
    }


@pytest.fixture(scope="module")
def good_files(zips) -> dict[str, bytes]:
    return read_zip(zips["attention"])


# ---------------------------------------------------------------------------------------------
# export


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"attention": "sparse"}, id="sparse"),
        *[
            pytest.param({"attention": name}, id=name)
            for name in available_attention()
            if name not in ("sparse", "neural")
        ],
        # at width 32 the neural scorer's default projection (dim_head // 32) is too small
        pytest.param(
            {"attention": "neural", "attention_options": {"projection_dim": 2}}, id="neural"
        ),
        pytest.param({"attention": "standard", "inattention": True}, id="inattention"),
    ],
)
def test_every_attention_mechanism_exports_and_matches_eager(options):
    model = small_model("lightweight", **options)
    exported = export_model(model, batch_sizes=CHECK)
    loaded = torch.jit.load(io.BytesIO(exported.archive), map_location="cpu")
    x = volts(5, seed=7)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-4, atol=1e-5)
    # no device baked in: the archive must also run on the server's GPU
    assert "DeviceObjType" not in str(loaded.inlined_graph)
    assert not any(op.startswith("aten::rms_norm") for op in exported.operators)


def test_preset_run_reloads_and_exports_with_its_own_defaults(tmp_path):
    from eegattn.training.runs import load_run

    run = make_run(tmp_path, "lightweight_fast", 1)
    model, config = load_run(run)
    assert config["model"] == "lightweight_fast"
    # rebuilt from the preset's name: strides 4 and 2, not the lightweight model's max-pools
    assert [stage.conv.stride[0] for stage in model.conv_stages] == [4, 2]
    exported = export_model(model, batch_sizes=CHECK)
    loaded = torch.jit.load(io.BytesIO(exported.archive), map_location="cpu")
    x = volts(5, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-4, atol=1e-5)


def test_export_ties_fixed_devices_to_the_input():
    class MakesTensors(nn.Module):
        def forward(self, x):
            ramp = torch.arange(x.shape[2], device=x.device, dtype=x.dtype)
            return (x * ramp).mean(dim=(1, 2)).unsqueeze(1) + torch.zeros(1, device=x.device)

    exported = export_model(MakesTensors(), batch_sizes=CHECK)
    code = torch.jit.load(io.BytesIO(exported.archive)).code
    assert 'torch.device("cpu")' not in code
    assert "ops.prim.device" in code
    assert any("device constant" in w for w in exported.warnings)


def test_export_rejects_wrong_shape_randomness_and_new_operators():
    class Flat(nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2))

    class Noisy(nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2)).unsqueeze(1) + torch.rand(x.shape[0], 1)

    class GroupedQuery(nn.Module):
        def forward(self, x):
            q = x[:, None] * 1e5
            attended = nn.functional.scaled_dot_product_attention(q, q, q, enable_gqa=True)
            return attended.mean(dim=(1, 2, 3)).unsqueeze(1)

    with pytest.raises(ValueError, match=r"returns \(1,\), the server expects \(1, 1\)"):
        export_model(Flat(), batch_sizes=CHECK)
    with pytest.raises(ValueError, match="two calls on the same batch give different outputs"):
        export_model(Noisy(), batch_sizes=CHECK)
    with pytest.raises(ValueError, match="scaled_dot_product_attention passes an argument torch"):
        export_model(GroupedQuery(), batch_sizes=CHECK)


def test_run_config_checks_name_each_mismatch():
    good = {"n_chans": 129, "n_times": 200, "sfreq": 100.0, "n_outputs": 1, "challenge": 1}
    check_run_config(good, 1)
    with pytest.raises(ValueError, match="400 samples per window, the challenge uses 200"):
        check_run_config({**good, "n_times": 400}, 1)
    with pytest.raises(ValueError, match="250.0 Hz, the challenge uses 100"):
        check_run_config({**good, "sfreq": 250.0}, 1)
    with pytest.raises(ValueError, match="challenge-1 run but was given as the challenge-2 run"):
        check_run_config(good, 2)


def test_package_refuses_a_64_channel_run(runs, tmp_path):
    run64 = make_run(tmp_path / "runs", "lightweight_noattn", 1, n_chans=64)
    out = tmp_path / "sub.zip"
    with pytest.raises(ValueError, match="trained on 64 channels, the challenge uses 129"):
        package_submission(run64, runs["eegnex"], out)
    assert not out.exists()


def test_package_never_overwrites_without_force(runs, good_files, tmp_path):
    out = tmp_path / "sub.zip"
    out.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="already exists.*--force"):
        package_submission(runs["lightweight_noattn"], runs["eegnex"], out)
    assert out.read_bytes() == b"user data"

    class Mean(nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2)).unsqueeze(1)

    exported = {k: export_model(Mean(), challenge=k, batch_sizes=CHECK) for k in (1, 2)}
    with pytest.raises(FileExistsError):
        write_submission_zip(exported, out)
    assert out.read_bytes() == b"user data"
    write_submission_zip(exported, out, force=True)
    assert zipfile.is_zipfile(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.zip"]  # no temporary left


def test_packed_zip_is_flat_self_contained_and_checksummed(good_files):
    assert sorted(good_files) == sorted(
        ["submission.py", "weights_challenge_1.pt", "weights_challenge_2.pt", "manifest.json"]
    )
    tree = ast.parse(good_files["submission.py"], feature_version=(3, 10))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"os", "pathlib", "torch"}
    manifest = json.loads(good_files["manifest.json"])
    for k in ("1", "2"):
        info = manifest["models"][k]
        assert hashlib.sha256(good_files[info["file"]]).hexdigest() == info["sha256"]
    assert manifest["models"]["1"]["model"] == "lightweight"
    assert manifest["models"]["2"]["model_options"]["attention"] == "standard"


def test_template_finds_weights_next_to_itself_and_checks_input(good_files, tmp_path, monkeypatch):
    folder = tmp_path / "unpacked"
    folder.mkdir()
    for name, data in good_files.items():
        (folder / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)  # the working folder is not the zip's folder
    spec = importlib.util.spec_from_file_location("packed_submission", folder / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = volts(3)
    for device in ("cpu", torch.device("cpu")):
        model = module.Submission(100, device).get_model_challenge_1()
        assert isinstance(model, nn.Module) and not model.training
        with torch.inference_mode():
            assert model(x).shape == (3, 1)
            assert torch.equal(model(x), model(x.double()))
    with pytest.raises(ValueError, match="129 channels x 200 samples"):
        model(volts(2)[:, :64])
    with pytest.raises(ValueError, match="100 Hz windows"):
        module.Submission(250, "cpu")


# ---------------------------------------------------------------------------------------------
# validation in the harness subprocess


def test_validate_attention_zip_passes(zips):
    report = validate_submission(zips["attention"], **FAST)
    assert report.ok, report.format()
    for k in (1, 2):
        m = report.measurements[f"challenge_{k}"]
        assert m["load_s"] > 0 and m["infer_s"] > 0
        assert m["repeat_max_abs_diff"] == 0.0
    assert "PASSED" in report.format()


def test_validate_plain_zip_scores_both_challenges(zips):
    rng = np.random.default_rng(0)
    x1 = (rng.standard_normal((6, 129, 200)) * 2e-5).astype(np.float32)
    x2 = (rng.standard_normal((5, 129, 400)) * 2e-5).astype(np.float32)
    y1, y2 = rng.random(6).astype(np.float32), rng.random(5).astype(np.float32)
    windows = {1: SimpleNamespace(X=x1, y=y1), 2: SimpleNamespace(X=x2, y=y2)}
    report = validate_submission(zips["plain"], windows=windows, seed=3, **FAST)
    assert report.ok, report.format()

    # the same scores in-process, from the packed archives and the documented crop
    files = read_zip(zips["plain"])
    starts = crop_starts(5, 400, 200, seed=3)
    x2_crop = np.stack([w[:, s : s + 200] for w, s in zip(x2, starts)])
    want = {}
    for k, x, y in ((1, x1, y1), (2, x2_crop, y2)):
        model = torch.jit.load(io.BytesIO(files[f"weights_challenge_{k}.pt"]))
        with torch.no_grad():
            pred = model(torch.from_numpy(x)).numpy().ravel()
        want[k] = nrmse(y, pred)
        assert report.scores[f"challenge_{k}"]["nrmse"] == pytest.approx(want[k], rel=1e-4)
    assert report.scores["overall"] == pytest.approx(0.3 * want[1] + 0.7 * want[2], rel=1e-4)


def test_zip_with_a_folder_inside_is_caught(good_files, tmp_path):
    nested = rezip(tmp_path / "nested.zip", {f"sub/{n}": d for n, d in good_files.items()})
    report = validate_submission(nested, **FAST)
    assert not report.ok
    flat = [f for f in report.errors if f.check == "flat zip"]
    assert flat and "sub/submission.py" in flat[0].message and "zip -j" in flat[0].fix
    assert any(f.check == "submission.py" for f in report.errors)
    # the harness still ran on the nested folder, and found nothing else wrong
    assert report.measurements["challenge_2"]["load_s"] > 0


def test_missing_weight_file_is_caught(good_files, tmp_path):
    files = {n: d for n, d in good_files.items() if n != "weights_challenge_2.pt"}
    report = validate_submission(rezip(tmp_path / "missing.zip", files), **FAST)
    assert not report.ok
    static = [f for f in report.errors if f.check == "missing weights"]
    assert static and static[0].challenge == 2 and "weights_challenge_2.pt" in static[0].message
    runtime = [f for f in report.errors if f.check == "weights not found"]
    assert runtime and runtime[0].challenge == 2 and "Path(__file__).parent" in runtime[0].fix
    assert report.measurements["challenge_1"]["load_s"] > 0  # challenge 1 is fine


def test_wrong_class_name_is_caught(good_files, tmp_path):
    source = good_files["submission.py"].replace(b"class Submission:", b"class MySubmission:")
    files = {**good_files, "submission.py": source}
    report = validate_submission(rezip(tmp_path / "class.zip", files), **FAST)
    errors = [f for f in report.errors if f.check == "class name"]
    assert len(errors) == 2  # the source check and the harness both say it
    assert all("MySubmission" in f.message for f in errors)
    assert "exactly `Submission`" in errors[0].fix


def test_wrong_output_shape_and_randomness_are_caught(good_files, tmp_path):
    def flat_output(x):
        return x.mean(dim=(1, 2))

    def noisy(x):
        return x.mean(dim=(1, 2)).unsqueeze(1) + torch.rand(x.shape[0], 1)

    files = {
        **good_files,
        "weights_challenge_1.pt": traced_bytes(flat_output),
        "weights_challenge_2.pt": traced_bytes(noisy),
    }
    files.pop("manifest.json")
    report = validate_submission(rezip(tmp_path / "shape.zip", files), **FAST)
    shape = [f for f in report.errors if f.check == "output shape"]
    assert shape and shape[0].challenge == 1 and "(1,)" in shape[0].message
    assert "reshape(-1, 1)" in shape[0].fix
    noise = [f for f in report.errors if f.check == "non deterministic"]
    assert noise and noise[0].challenge == 2


def test_import_of_eegattn_is_caught_in_source_and_in_the_harness(good_files, tmp_path):
    source = b"import eegattn\n" + good_files["submission.py"]
    files = {**good_files, "submission.py": source}
    report = validate_submission(rezip(tmp_path / "imports.zip", files), **FAST)
    errors = [f for f in report.errors if f.check == "imports"]
    assert any("imports eegattn, which the server does not have" in f.message for f in errors)
    # the harness process really cannot import it, although it is installed here
    assert any("blocked by eegattn validate-submission" in f.message for f in errors)
    assert "eegattn package" in errors[0].fix


# ---------------------------------------------------------------------------------------------
# command line


def test_cli_reports_a_non_zip_and_refuses_to_overwrite(runs, tmp_path, capsys):
    from eegattn.cli import main

    bogus = tmp_path / "bogus.zip"
    bogus.write_text("not a zip")
    report_json = tmp_path / "report.json"
    assert main(["validate-submission", str(bogus), "--json", str(report_json)]) == 1
    out = capsys.readouterr().out
    assert "is not a zip archive" in out and "FAILED" in out
    assert json.loads(report_json.read_text())["ok"] is False

    existing = tmp_path / "sub.zip"
    existing.write_bytes(b"keep")
    code = main(
        ["package", str(runs["lightweight_noattn"]), str(runs["eegnex"]), "-o", str(existing)]
    )
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    assert existing.read_bytes() == b"keep"
