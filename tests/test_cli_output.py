"""What the command line prints: warnings as one clean line, a damaged weights.pt as one line."""

from __future__ import annotations

import shutil
import warnings

import pytest

from eegattn.cli import main


def test_warnings_print_as_one_clean_line(tiny_root, tmp_path, capsys):
    """A real warning (a truncated recording skipped by `eegattn preprocess`) prints as
    `eegattn: warning: <message>`: no source path, no code line, no line breaks."""
    from eegattn.data import hbn

    shutil.copytree(tiny_root / "EEG2025r5", tmp_path / "data" / "EEG2025r5")
    rec = hbn.discover_recordings(tmp_path / "data", tasks="contrastChangeDetection")[0]
    rec.path.write_bytes(rec.path.read_bytes()[:5000])
    shown_before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        code = main(["preprocess", "--challenge", "1", "--root", str(tmp_path / "data"),
                     "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
        err = capsys.readouterr().err
        warnings.warn("outside the CLI", UserWarning, stacklevel=1)
        outside = capsys.readouterr().err
    assert "eegattn: warning" not in outside  # the display is the CLI's only
    assert code == 0
    lines = err.splitlines()
    assert lines, "no warning was printed"
    assert all(line.startswith("eegattn: warning: ") for line in lines), err
    assert any("skipped 1 recording(s)" in line and rec.path.name in line for line in lines)
    assert ".py:" not in err and "warnings.warn" not in err and "SkippedRecordings" not in err
    assert warnings.showwarning is shown_before  # restored when the command ends


def test_importing_eegattn_leaves_warnings_alone():
    import subprocess
    import sys

    code = ("import warnings; before = warnings.showwarning\n"
            "import eegattn, eegattn.cli, eegattn.data.cache\n"
            "print(warnings.showwarning is before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "True", out.stderr


def test_multiline_warning_becomes_one_line(monkeypatch, capsys, tmp_path):
    import eegattn.commands.cache as command

    def run(args):
        warnings.warn("first part\n  second part", RuntimeWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(command, "run", run)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["cache", "--cache-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().err == "eegattn: warning: first part second part\n"


def _run_folder(root, challenge: int):
    """A run folder as `eegattn train` writes it (a small untrained model)."""
    import torch

    from eegattn.models import build_model
    from eegattn.training.runs import create_run_dir, save_run

    torch.manual_seed(challenge)
    options = {"conv_channels": (16, 32), "head_hidden": (8,)}
    model = build_model("lightweight_noattn", n_chans=129, **options)
    run = create_run_dir(root, f"c{challenge}")
    save_run(run, model, config={"model": "lightweight_noattn", "model_options": options,
                                 "challenge": challenge})
    return run


GARBAGE = {
    "random bytes": b"\x00garbage, not a torch file" * 20,
    "a pickle that is not weights": __import__("pickle").dumps({"not": object}),
    "a truncated zip": None,  # the real file cut in half
}


@pytest.mark.parametrize("garbage", list(GARBAGE))
def test_garbage_weights_give_one_line(tmp_path, capsys, garbage):
    """`eegattn package` with a damaged weights.pt: one line naming the file and the fix, not
    torch's paragraph about weights_only and trusted sources."""
    run1, run2 = _run_folder(tmp_path / "runs", 1), _run_folder(tmp_path / "runs", 2)
    weights = run1 / "weights.pt"
    data = GARBAGE[garbage]
    weights.write_bytes(data if data is not None else weights.read_bytes()[:400])
    code = main(["package", str(run1), str(run2), "-o", str(tmp_path / "sub.zip")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert f"weights.pt in {run1} cannot be read: it is not a PyTorch state dict" in err
    assert "re-train or restore the run folder" in err
    assert "weights_only" not in err and "trust" not in err and "Traceback" not in err
    assert not (tmp_path / "sub.zip").exists()
