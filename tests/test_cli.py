"""The command line: fast --help without heavy imports, and clean errors."""

import subprocess
import sys

HEAVY = ("torch", "mne", "braindecode", "eegdash", "matplotlib", "skorch", "sklearn")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_help_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from eegattn.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert "usage: eegattn" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_subcommand_help_is_light():
    from eegattn.cli import COMMANDS

    for name in COMMANDS:
        cmd = name.replace("_", "-")
        code = (
            "import sys\n"
            "from eegattn.cli import main\n"
            "try:\n"
            f"    main([{cmd!r}, '--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        )
        result = _run(code)
        assert result.returncode == 0, (cmd, result.stderr)
        assert f"usage: eegattn {cmd}" in result.stdout
        assert result.stdout.strip().splitlines()[-1] == "[]", cmd


def test_package_root_is_lazy():
    result = _run(
        "import sys, eegattn\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "eegattn.nrmse\n"
        "print('eegattn.training.metrics' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "[]"
    assert lines[1] == "True"  # the lazy name really loaded its module


def test_unknown_attribute_raises():
    import pytest

    import eegattn

    with pytest.raises(AttributeError, match="(?i)no eegattn attribute nope"):
        eegattn.nope  # noqa: B018


def test_console_script_help():
    exe = __import__("shutil").which("eegattn") or str(
        __import__("pathlib").Path(sys.executable).with_name("eegattn")
    )
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for cmd in ("demo", "synth", "train", "package", "validate-submission", "baseline"):
        assert cmd in result.stdout


def test_pipeline_scripts_help_and_clean_errors(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    for script in ("pipelines/challenge1.py", "pipelines/challenge2.py",
                   "challenges/challenge1.py", "challenges/challenge2.py"):
        result = subprocess.run([sys.executable, str(repo / script), "--help"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "--root" in result.stdout, script
    missing = tmp_path / "no-such-root"
    result = subprocess.run(
        [sys.executable, str(repo / "pipelines/challenge1.py"), "--root", str(missing)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "error" in result.stderr and str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_rejects_bad_model_options_cleanly():
    from eegattn.cli import main

    assert main(["demo", "--model-options", "{not json"]) == 2


def test_demo_trains_the_chosen_head_and_augmentation(monkeypatch, capsys):
    import eegattn.training.pipeline as pipeline
    from eegattn.cli import main
    from eegattn.commands.demo import DEMO_AUGMENT

    seen = {}
    monkeypatch.setattr(pipeline, "run_challenge", lambda challenge, **kw: seen.update(kw))
    assert main(["demo"]) == 0
    assert seen["augment"] == list(DEMO_AUGMENT) and "time_shift" in DEMO_AUGMENT
    assert seen["model_options"] == {"head": "distribution"}
    assert main(["demo", "--augment"]) == 0 and seen["augment"] is None
    seen.clear()
    assert main(["demo", "--augment", "time_warp"]) == 2 and not seen
    assert "time_warp" in capsys.readouterr().err


def test_train_passes_early_stopping_options(monkeypatch):
    import eegattn.training.pipeline as pipeline
    from eegattn.cli import main

    seen = {}
    monkeypatch.setattr(pipeline, "run_challenge", lambda challenge, **kw: seen.update(kw))
    assert main(["train", "--challenge", "1", "--patience", "3", "--start-from-epoch", "0"]) == 0
    assert seen["patience"] == 3 and seen["start_from_epoch"] == 0
    assert seen["precision"] == "float32"
    assert main(["train", "--challenge", "1", "--precision", "bfloat16"]) == 0
    assert seen["precision"] == "bfloat16"
    assert main(["train", "--challenge", "1"]) == 0
    assert seen["patience"] == 5 and seen["start_from_epoch"] is None
