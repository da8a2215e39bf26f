"""Synthetic HBN-like challenge releases with planted ground truth, and their oracle.

``make_release`` writes a folder that the real loading path reads exactly like a downloaded
EEG Foundation Challenge 2025 release:

- ``<root>/EEG2025r5`` (full layout: generated NDAR-style IDs such as ``NDARAB793GL3``, plus 2-3
  of the nine subjects the challenge-1 starter kit excludes, so exclusion is exercised), or
  ``<root>/EEG2025r5mini`` (mini layout: exactly the 20 real subject IDs of the R5 mini release,
  because eegdash keeps only those in mini mode). Both load offline with
  ``EEGChallengeDataset(release="R5", cache_dir=<root>, mini=..., download=False, task=...)``.
- BIDS files as the challenge: ``dataset_description.json``, ``participants.tsv`` (HBN columns,
  externalizing and the other factors NaN for some subjects, per-task availability flags),
  ``participants.json``, ``README`` and per recording
  ``sub-<ID>/eeg/sub-<ID>_task-<task>[_run-<n>]_eeg.bdf`` with ``_eeg.json``, ``_channels.tsv``,
  ``_events.tsv`` (columns ``onset, duration, value, event_code, feedback``; string values) and
  ``_events.json``. Written with mne-bids (BDF through edfio), events rewritten in HBN's format.
- 129 channels ``E1..E128, Cz`` (GSN-HydroCel-129), Cz flat (all zeros: the reference). 100 Hz by
  default (the challenge data are 0.5-50 Hz at 100 Hz); ``raw_like=True`` writes 500 Hz files
  with 60 Hz line noise (+ harmonics), slow drifts and broadband muscle noise above 50 Hz so that
  resampling, notch and band-pass filters have work to do. BDF physical range is fixed at
  +-3.2 mV (24 bit: 0.38 nV steps, negligible against microvolt signals).

Signal model (all amplitudes are RMS at a typical channel, volts in the files)
-------------------------------------------------------------------------------
- Background: 20 spatially smooth latent sources per subject with 1/f^alpha spectra
  (alpha in [0.9, 1.5] per subject, knee 1 Hz) plus white sensor noise (3 microvolts): about
  10-13 microvolts median channel RMS after referencing to Cz (less next to Cz). 100 Hz
  releases are shaped by a 0.5 Hz high-pass response like the challenge's band-pass.
- Alpha rhythm: narrow band around each subject's alpha frequency (9-11.5 Hz), occipital
  topography (Oz = E75), about 2.5x stronger while the eyes are closed in RestingState.
- Blinks: about one per 6 s while the eyes are open, 80-200 microvolts over the eye channels.
- Per-subject channel gains (lognormal, 10 %).

Planted ground truth
--------------------
Challenge 1 (response time from a +0.5..+2.5 s post-stimulus window): every CCD trial with a
stimulus and a response carries a positive centro-parietal "P300-like" Gaussian wave
(topography centred on Pz = E62, width 4 cm, referenced to Cz; temporal sd ``C1_WIDTH`` =
0.12 s; peak ``C1_AMPLITUDE`` = 16 microvolts at Pz, lognormal subject (20 %) and trial (20 %)
variation) peaking ``C1_LATENCY_OFFSET + C1_LATENCY_SLOPE * rt_decision + N(0, C1_JITTER)``
= 0.6 s + 0.8 rt + N(0, 0.16 s) after the stimulus, i.e. 0.84-2.2 s, inside the window.
``rt_decision`` is the first press, except in "premature" double presses (about half of the
~8 % double presses) where the wave follows the second, intended press: the target (the first
press) is then label noise. RTs are lognormal (subject medians about 0.55-1.1 s, slower when
younger; within-subject log-sd 0.3) truncated to 0.3-2.0 s. SNR: the jitter is 0.2 s of RT
against an RT sd of about 0.29 s; the wave's peak at Pz (13.5 microvolts after the Cz
reference) is about 1.5x the channel's RMS (about 9 microvolts).
Every button press of a CCD run (generator version 4) also carries the physiology of a press,
from a random stream of its own (the events and all other signals are those of version 3): a
lateralised readiness potential over the motor cortex contralateral to the pressing hand (C3 =
E36 for the right hand, C4 = E104 for the left; -3 microvolts peaking 0.05 s before the press),
the desynchronisation of a 22 Hz sensorimotor rhythm (3 microvolts per hemisphere) around the
press with a rebound after it, and a centro-parietal positivity 0.3 s after it (3 microvolts,
6 after a wrong or non-target press). Values and sources: ``docs/challenge.md``, "The synthetic
release's button press"; constants in :mod:`~eegattn.data.synthetic.params`.
Measured on the default release (24 subjects, seed 0, excluded subjects dropped, 1875
windows): NRMSE 0.60 for the stimulus wave's planted latency alone (no EEG noise) and 0.67 for
the EEG oracle (``c1_response_time_from_windows``: the likelihood of every candidate press time
under the press waves and the stimulus wave, read through their minimum-variance spatial
filters, then E[target | posterior mean]) -- the best achievable from the data.

Challenge 2 (externalizing): a frontal beta rhythm (centre 20 Hz, sd 3 Hz, topography centred
on Fz = E11, ``C2_BETA_RMS`` = 6 microvolts at f = 0) in every recording of the subject, with
log amplitude ``C2_LOG_AMPLITUDE_SCALE * f`` = 0.35 f, where the subject feature is
``f = C2_BETA * z + N(0, C2_NOISE)`` = 0.6 z + N(0, 1), ``z`` the standardised externalizing
score. R^2 = 0.36 / 1.36 = 0.26, so the best achievable NRMSE is sqrt(1 - 0.26) = 0.86 in the
population; on the default release it is 0.90 over the 4 s / 2 s-stride CCD windows of the 22
subjects with a target. The log beta power of the Fz projection correlates 0.93 with ``f``
across subjects, so the feature is visible in the EEG. Subjects whose externalizing is NaN in
participants.tsv still get a feature from the same model. Every task carries the feature, with
the task's strength (a multiplier of the 0.35 scale): 1 for CCD, RestingState and the other
active tasks, 0.5 for the movies and surroundSupp (:mod:`~eegattn.data.synthetic.tasks`,
``C2_TASK_STRENGTH``; fixed before any model was trained on them, not tuned).

The truth is written to ``<release>/.eegattn_truth.json`` (a hidden file that BIDS tools and
eegdash ignore): constants, topographies, per-subject features and one row per CCD trial.
``oracle_predict`` turns it into the best prediction (see its docstring); ``load_truth`` reads it.

Deliberate irregularities (the real data have them too): onsets off the 10 ms grid (millisecond
resolution), trials without stimulus (2 %, some with a ``non_target`` press), trials without
response (4 %), wrong presses (8 %), double presses (8 %), a few swapped rows in events.tsv
(unsorted onsets), one CCD run in the release without ``end_experiment``, a ``9999`` first row.
Event codes in ``event_code`` are illustrative, not HBN's.

Size and time: the default release (24 subjects, 100 Hz, 65 CCD runs, 24 RestingState, about
22 DespicableMe and 42 surroundSupp recordings of 60 s) is about 660 MB (510 MB of it CCD and
RestingState, byte for byte what generator version 2 wrote) and takes about 25 s of CPU (2
worker processes by default; the bytes written do not depend on the number of workers).

Modules (this package re-exports the public names, so ``from eegattn.data.synthetic import
make_release`` keeps working):

- :mod:`~eegattn.data.synthetic.params` -- constants of the signal model and planted truth,
  event codes, file names, small helpers;
- :mod:`~eegattn.data.synthetic.subjects` -- subjects and their event timelines;
- :mod:`~eegattn.data.synthetic.signals` -- the simulated EEG;
- :mod:`~eegattn.data.synthetic.tasks` -- the tasks beyond CCD and RestingState (movies,
  surroundSupp, sequence learning, symbol search) and each task's challenge-2 strength;
- :mod:`~eegattn.data.synthetic.bids` -- writing the BIDS files;
- :mod:`~eegattn.data.synthetic.release` -- :func:`make_release`, :func:`read_marker`;
- :mod:`~eegattn.data.synthetic.oracle` -- :func:`load_truth`, :func:`oracle_predict`,
  :func:`c1_latency_from_windows`, :func:`c1_response_time_from_windows`.

Facts about the challenge itself (releases, excluded subjects, mini subjects, folder names,
the default cache folder) live in :mod:`eegattn.challenge`.
"""

from eegattn.challenge import (
    CCD_TASK,
    EXCLUDED_SUBJECTS,
    FACTOR_COLUMNS,
    HBN_TASK_COLUMNS,
    MINI_SIZE,
    R5_MINI_SUBJECTS,
    RELEASES,
    REST_TASK,
    default_cache_dir,
    release_folder_name,
)
from eegattn.data.synthetic.oracle import (
    c1_latency_from_windows,
    c1_response_time_from_windows,
    load_truth,
    oracle_predict,
)
from eegattn.data.synthetic.params import (
    DEFAULT_N_SUBJECTS,
    EVENT_CODES,
    GENERATOR_VERSION,
    MARKER_NAME,
    SUPPORTED_TASKS,
    TRUTH_NAME,
    mini_subjects,
)
from eegattn.data.synthetic.release import make_release, read_marker
from eegattn.data.synthetic.tasks import C2_TASK_STRENGTH, DEFAULT_TASKS

__all__ = [
    "C2_TASK_STRENGTH",
    "CCD_TASK",
    "DEFAULT_TASKS",
    "DEFAULT_N_SUBJECTS",
    "EVENT_CODES",
    "EXCLUDED_SUBJECTS",
    "FACTOR_COLUMNS",
    "GENERATOR_VERSION",
    "HBN_TASK_COLUMNS",
    "MARKER_NAME",
    "MINI_SIZE",
    "R5_MINI_SUBJECTS",
    "RELEASES",
    "REST_TASK",
    "SUPPORTED_TASKS",
    "TRUTH_NAME",
    "c1_latency_from_windows",
    "c1_response_time_from_windows",
    "default_cache_dir",
    "load_truth",
    "make_release",
    "mini_subjects",
    "oracle_predict",
    "read_marker",
    "release_folder_name",
]
