"""Opening HBN releases: discovery, filters, exclusions, layouts, headers and bad files."""

from __future__ import annotations

import shutil
import warnings

import pytest

from eegattn.data import hbn

CCD = "contrastChangeDetection"
EXCLUDED_IN_TINY = "NDARBA381JGH"  # the tiny release (seed 3) holds this excluded subject


@pytest.fixture
def tiny_copy(tiny_root, tmp_path):
    """A private copy of the tiny release that a test may damage."""
    shutil.copytree(tiny_root / "EEG2025r5", tmp_path / "EEG2025r5")
    return tmp_path


def test_discover_filters_and_exclusions(tiny_root):
    everything = hbn.discover_recordings(tiny_root, keep_excluded=True)
    subjects = {r.subject for r in everything}
    assert EXCLUDED_IN_TINY in subjects and len(subjects) == 4
    assert {r.task for r in everything} == {CCD, "RestingState", "DespicableMe", "surroundSupp"}

    default = hbn.discover_recordings(tiny_root)
    assert EXCLUDED_IN_TINY not in {r.subject for r in default}
    assert len(default) < len(everything)

    ccd = hbn.discover_recordings(tiny_root, tasks=CCD)
    assert ccd and all(r.task == CCD and r.run in (1, 2, 3) for r in ccd)
    rest = hbn.discover_recordings(tiny_root, tasks=["RestingState"])
    assert all(r.run is None for r in rest)

    one = sorted(subjects - {EXCLUDED_IN_TINY})[0]
    picked = hbn.discover_recordings(tiny_root, subjects=[f"sub-{one}"], tasks=CCD)
    assert {r.subject for r in picked} == {one}
    first = picked[0]
    assert first.events_path.name.endswith("_events.tsv") and first.events_path.is_file()
    assert first.name.startswith("R5/sub-") and first.release == "R5"
    # sorted by subject, task, run
    keys = [(r.subject, r.task, r.run or 0) for r in default]
    assert keys == sorted(keys)


def test_release_names_and_unknown_inputs(tiny_root):
    assert hbn.release_folder_name("r5") == "EEG2025r5"
    assert hbn.release_folder_name(11, mini=True) == "EEG2025r11mini"
    with pytest.raises(ValueError, match="unknown HBN release"):
        hbn.normalize_release("R12")
    with pytest.raises(ValueError, match="'tasks' parameter.*you mean 'contrastChangeDetection'"):
        hbn.discover_recordings(tiny_root, tasks="contrastchangedetection")


def test_empty_query_is_a_clear_error(tiny_root):
    with pytest.raises(ValueError, match="no recordings match the query"):
        hbn.discover_recordings(tiny_root, subjects=["NDARXX000XX0"])
    with pytest.raises(ValueError, match="excluded subjects left out"):
        hbn.discover_recordings(tiny_root, subjects=[EXCLUDED_IN_TINY])
    assert hbn.discover_recordings(tiny_root, subjects=[EXCLUDED_IN_TINY], keep_excluded=True)


def test_missing_release_folder_says_layout_and_how_to_get_data(tiny_root, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        hbn.discover_recordings(tmp_path / "nowhere")
    text = str(err.value)
    assert "EEG2025r5" in text and "sub-<ID>" in text and "s3://nmdatasets" in text
    assert "eegattn synth" in text
    with pytest.raises(FileNotFoundError, match="pass mini=False"):
        hbn.discover_recordings(tiny_root, mini=True)
    with pytest.raises(FileNotFoundError, match="looks like a release folder"):
        hbn.discover_recordings(tiny_root / "EEG2025r5")


def test_wrong_layout(tmp_path):
    (tmp_path / "EEG2025r5" / "data" / "sub-NDARAA000AA0" / "eeg").mkdir(parents=True)
    with pytest.raises(ValueError, match="one level deeper"):
        hbn.discover_recordings(tmp_path)
    eeg = tmp_path / "EEG2025r6" / "sub-NDARAA000AA0" / "eeg"
    eeg.mkdir(parents=True)
    (eeg / "sub-NDARAA000AA0_task-RestingState_eeg.set").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\.set"):
        hbn.discover_recordings(tmp_path, releases="R6")


def test_bdf_header_matches_mne(tiny_root):
    import mne

    rec = hbn.discover_recordings(tiny_root, tasks=CCD)[0]
    header = hbn.read_bdf_header(rec.path)
    raw = mne.io.read_raw_bdf(rec.path, verbose="error")
    assert header.channels == tuple(raw.ch_names)
    assert header.sfreq == raw.info["sfreq"] == 100.0
    assert header.n_times == raw.n_times
    assert hbn.check_channels_names(header.channels) == ""


def test_fast_bdf_reader_is_bit_identical_to_mne(tiny_root):
    import mne
    import numpy as np

    recordings = hbn.discover_recordings(tiny_root, keep_excluded=True)
    assert len(recordings) >= 10
    for rec in recordings:
        expected = mne.io.read_raw_bdf(rec.path, preload=True, verbose="error").get_data()
        np.testing.assert_array_equal(hbn.read_bdf_data(rec.path), expected)


def test_corrupt_and_truncated_bdf_are_skipped_with_a_counted_warning(tiny_copy):
    recordings = hbn.discover_recordings(tiny_copy, tasks=CCD)
    garbage, cut = recordings[0].path, recordings[1].path
    garbage.write_bytes(b"not a bdf file at all" * 20)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        hbn.read_bdf_header(cut)
    with pytest.raises(ValueError, match="not an EDF/BDF"):
        hbn.read_bdf_header(garbage)

    with pytest.warns(hbn.SkippedRecordingsWarning) as record:
        ok = hbn.open_releases(tiny_copy, tasks=CCD)
    message = " ".join(str(w.message) for w in record)
    assert "skipped 2 recording(s) (corrupt or truncated .bdf)" in message
    assert garbage.name in message and cut.name in message
    assert len(ok) == len(recordings) - 2
    with pytest.raises(ValueError, match="strict=True"):
        hbn.open_releases(tiny_copy, tasks=CCD, strict=True)


def test_recording_without_129_channels_is_listed(tiny_copy):
    import mne

    target = hbn.discover_recordings(tiny_copy, tasks="RestingState")[0]
    raw = mne.io.read_raw_bdf(target.path, preload=True, verbose="error")
    raw.drop_channels(["E5"])
    mne.export.export_raw(target.path, raw, fmt="bdf", overwrite=True, verbose="error")
    with pytest.warns(hbn.SkippedRecordingsWarning, match="not 129 HBN channels") as record:
        ok = hbn.open_releases(tiny_copy)
    assert target.path.name in str(record[0].message) and "128 channels" in str(record[0].message)
    assert target not in ok
    with pytest.raises(ValueError, match="128 channels"):
        hbn.open_releases(tiny_copy, strict=True)


def test_all_recordings_unusable(tiny_copy):
    for rec in hbn.discover_recordings(tiny_copy, tasks="RestingState"):
        rec.path.write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="none of the"):
            hbn.open_releases(tiny_copy, tasks="RestingState")


def test_participants(tiny_root):
    participants = hbn.read_participants(tiny_root / "EEG2025r5")
    assert len(participants) == 4 and all(not k.startswith("sub-") for k in participants)
    values = [hbn.participant_value(participants, s, "externalizing") for s in participants]
    assert sum(v != v for v in values) >= 1  # the tiny release has a NaN target
    assert hbn.participant_value(participants, "NDARNOBODY00", "externalizing") != \
        hbn.participant_value(participants, "NDARNOBODY00", "externalizing")  # NaN
    with pytest.raises(ValueError, match="no column 'extern'"):
        hbn.participant_value(participants, next(iter(participants)), "extern")
    with pytest.raises(FileNotFoundError, match="participants.tsv"):
        hbn.read_participants(tiny_root)


def test_eegdash_source_offline_lists_the_same_recordings(tiny_root, capsys):
    local = hbn.open_releases(tiny_root, tasks=CCD)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        through_eegdash = hbn.open_releases(tiny_root, tasks=CCD, source="eegdash",
                                            download=False)
    capsys.readouterr()
    assert [(r.subject, r.run, r.path.resolve()) for r in through_eegdash] == [
        (r.subject, r.run, r.path.resolve()) for r in local
    ]
    with pytest.raises(ValueError, match="'source' parameter. Allowed values are 'local', 'eeg"):
        hbn.open_releases(tiny_root, source="s3")
