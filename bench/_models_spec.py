"""bench/models.py, part 1: the settings, the targets and the model names it understands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


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
