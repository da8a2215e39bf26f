"""A synthetic release written as BIDS files laid out as the challenge's (BDF, events, sidecars)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from eegattn.challenge import (
    FACTOR_COLUMNS,
    HBN_TASK_COLUMNS,
)
from eegattn.data.montage import (
    HBN_CHANNELS,
)
from eegattn.data.synthetic.params import (
    BLOCK_CODE_BASE,
    EVENT_CODES,
    GENERATOR_VERSION,
    HIGHPASS,
    LINE_FREQ,
    PHYSICAL_RANGE_UV,
    TRUTH_NAME,
)
from eegattn.data.synthetic.subjects import (
    _Subject,
)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def _write_events(path_tsv: Path, rows: list[tuple[int, str, str]],
                  levels: dict[str, str] | None = None) -> None:
    lines = ["onset\tduration\tvalue\tevent_code\tfeedback"]
    for onset_ms, value, feedback in rows:
        code = EVENT_CODES.get(value)
        if code is None and value.startswith("contrastChangeB"):
            code = BLOCK_CODE_BASE + int(value[len("contrastChangeB"): -len("_start")])
        lines.append(f"{onset_ms / 1000.0:.3f}\tn/a\t{value}\t{code}\t{feedback}")
    path_tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    levels = levels or {
        "9999": "Recording start marker (no experimental meaning).",
        "contrastChangeB<k>_start": "Start of block k of contrast-change trials.",
        "contrastTrial_start": "Start of a trial: two flickering gratings appear.",
        "left_target": "Contrast change of the left grating (the stimulus).",
        "right_target": "Contrast change of the right grating (the stimulus).",
        "left_buttonPress": "Left button press.",
        "right_buttonPress": "Right button press.",
        "end_experiment": "End of the run.",
        "resting_start": "Start of the resting-state block.",
        "instructed_toOpenEyes": "Instruction to open the eyes.",
        "instructed_toCloseEyes": "Instruction to close the eyes.",
        "break cnt": "Break counter.",
    }
    sidecar = {
        "onset": {"Description": "Event onset from the start of the recording.", "Units": "s"},
        "duration": {"Description": "Event duration (not recorded).", "Units": "s"},
        "value": {"Description": "Event name.", "Levels": levels},
        "event_code": {"Description": "Numeric event code (illustrative in this synthetic "
                                      "release)."},
        "feedback": {
            "Description": "Feedback shown after a button press.",
            "Levels": {
                "smiley_face": "Correct press (side of the target).",
                "sad_face": "Wrong press.",
                "non_target": "Press with no target on screen.",
                "n/a": "Not a press.",
            },
        },
    }
    _write_json(path_tsv.with_suffix(".json"), sidecar)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _write_recording(root: Path, subject_id: str, task: str, run: int | None,
                     data: np.ndarray, sfreq: float, rows, raw_like: bool,
                     levels: dict[str, str] | None = None) -> Path:
    import mne
    import mne_bids

    info = mne.create_info(list(HBN_CHANNELS), sfreq, "eeg")
    with info._unlock():
        info["line_freq"] = LINE_FREQ
        info["highpass"] = 0.0 if raw_like else HIGHPASS
        info["lowpass"] = sfreq / 2.0
    raw = mne.io.RawArray(data, info, verbose=False)
    bids_path = mne_bids.BIDSPath(subject=subject_id, task=task, run=run, datatype="eeg",
                                  root=root)
    # mne-bids' notes (e.g. "No events found" for tasks without events) go to warnings and,
    # when MNE logs to a file-like handler, to its logger; verbose="error" (not False, which
    # means "warning") keeps both out of the output of `eegattn synth`
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mne_bids.write_raw_bids(raw, bids_path, format="BDF", allow_preload=True,
                                overwrite=True, physical_range=PHYSICAL_RANGE_UV,
                                verbose="error")
    fpath = Path(bids_path.fpath)
    stem = fpath.name[: -len("_eeg.bdf")]
    _write_events(fpath.parent / f"{stem}_events.tsv", rows, levels)
    eeg_json = fpath.parent / f"{stem}_eeg.json"
    meta = json.loads(eeg_json.read_text(encoding="utf-8"))
    meta.update(
        Manufacturer="Electrical Geodesics (EGI)",
        EEGReference="Cz",
        PowerLineFrequency=LINE_FREQ,
        EEGPlacementScheme="EGI GSN-HydroCel-129",
        SoftwareFilters=(
            "n/a" if raw_like else {"BandPass": {"LowCutoff": HIGHPASS, "HighCutoff": 50.0}}
        ),
    )
    _write_json(eeg_json, meta)
    return fpath


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return str(value)


def _write_participants(root: Path, release: str, subjects: list[_Subject],
                        available: dict[str, set[str]]) -> None:
    header = ["participant_id", "release_number", "sex", "age", "ehq_total", "commercial_use",
              "full_pheno", *FACTOR_COLUMNS, *HBN_TASK_COLUMNS]
    lines = ["\t".join(header)]
    for s in subjects:
        has_pheno = np.isfinite(s.factors["externalizing"])
        row = [f"sub-{s.subject_id}", release, s.sex, _fmt(s.age), _fmt(s.ehq_total), "Yes",
               "Yes" if has_pheno else "No", *(_fmt(s.factors[c]) for c in FACTOR_COLUMNS)]
        row += ["available" if col in available[s.subject_id] else "unavailable"
                for col in HBN_TASK_COLUMNS]
        lines.append("\t".join(row))
    (root / "participants.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    desc = {
        "participant_id": {"Description": "Participant identifier (sub-<NDAR GUID>)."},
        "release_number": {"Description": "HBN release the participant belongs to."},
        "sex": {"Description": "Sex.", "Levels": {"M": "male", "F": "female"}},
        "age": {"Description": "Age at recording.", "Units": "years"},
        "ehq_total": {"Description": "Edinburgh Handedness Questionnaire score (-100..100)."},
        "commercial_use": {"Description": "Data may be used commercially."},
        "full_pheno": {"Description": "Full phenotype available."},
        "p_factor": {"Description": "General psychopathology factor (CBCL bifactor model)."},
        "attention": {"Description": "Attention factor (CBCL bifactor model)."},
        "internalizing": {"Description": "Internalizing factor (CBCL bifactor model)."},
        "externalizing": {"Description": "Externalizing factor (CBCL bifactor model)."},
    }
    for col in HBN_TASK_COLUMNS:
        desc[col] = {"Description": f"Availability of the {col} recording.",
                     "Levels": {"available": "present", "unavailable": "absent"}}
    _write_json(root / "participants.json", desc)


def _write_dataset_files(root: Path, release: str, mini: bool) -> None:
    _write_json(
        root / "dataset_description.json",
        {
            "Name": f"Synthetic HBN-EEG {release}{' mini' if mini else ''} (eegattn)",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["eegattn synthetic generator"],
            "GeneratedBy": [{"Name": "eegattn synth", "Version": str(GENERATOR_VERSION)}],
        },
    )
    (root / "README").write_text(
        "Synthetic data shaped like the EEG Foundation Challenge 2025 HBN releases.\n"
        "No real participant data. Generated by `eegattn synth`; the planted ground truth is\n"
        f"in {TRUTH_NAME}.\n",
        encoding="utf-8",
    )


