"""The HBN tasks beyond CCD and RestingState: movies, surroundSupp, sequence learning, symbols.

Every task of the challenge can be written (``make_release(tasks=...)``); the default release
adds one movie (``DespicableMe``) and the two ``surroundSupp`` runs to the CCD runs and
RestingState (:data:`DEFAULT_TASKS`). Each recording carries the subject's planted
challenge-2 feature ``f`` (``params``: frontal beta with log amplitude
``C2_LOG_AMPLITUDE_SCALE * strength * f``), with the strength of its task,
:data:`C2_TASK_STRENGTH`:

- 1.0 for contrastChangeDetection and RestingState (as the generator wrote them before the
  other tasks existed, so their files stay byte for byte what they were) and for the other
  active tasks (seqLearning6target, seqLearning8target, symbolSearch);
- 0.5 for the passive visual tasks (the four movies and surroundSupp): half the effect of
  ``f`` on the log beta amplitude.

The two levels were fixed before any model was trained on these tasks and are not tuned to
favour a method; they only make the tasks differ, so that a benchmark can show whether
training on more tasks helps a model scored on CCD windows. The truth file records them
(``challenge2.task_strength``). The best prediction from the truth, E[externalizing | f],
does not depend on the task (``f`` is one number per subject); the strength decides how
visible ``f`` is in a task's EEG.

Events are illustrative (the real files' markers are richer): movies ``video_start`` /
``video_stop``; surroundSupp a train of ``stim_ON`` / ``fixpoint_ON``; the other active tasks
``task_start``, ``stim_ON`` and ``buttonPress`` markers, ``task_stop``. No eyes-closed
periods. Each subject has each added recording with probability :data:`AVAILABILITY` (HBN
subjects miss some tasks); the draws use their own random streams, so adding tasks never
changes the CCD and RestingState files of a release.
"""

from __future__ import annotations

import math

import numpy as np

from eegattn.challenge import CCD_TASK, REST_TASK
from eegattn.data.synthetic.params import _rng
from eegattn.data.synthetic.subjects import _ms

MOVIE_TASKS: tuple[str, ...] = ("DespicableMe", "DiaryOfAWimpyKid", "FunwithFractals",
                                "ThePresent")
ACTIVE_TASKS: tuple[str, ...] = ("seqLearning6target", "seqLearning8target", "symbolSearch")
SURROUND_TASK = "surroundSupp"
#: the tasks this module writes (CCD and RestingState: ``subjects`` / ``release``)
OTHER_TASKS: tuple[str, ...] = (*MOVIE_TASKS, SURROUND_TASK, *ACTIVE_TASKS)
#: runs of each task (None: the task has no runs)
TASK_RUNS: dict[str, tuple[int | None, ...]] = {
    **{task: (None,) for task in OTHER_TASKS}, SURROUND_TASK: (1, 2)}
#: the tasks of the default release
DEFAULT_TASKS: tuple[str, ...] = (CCD_TASK, REST_TASK, "DespicableMe", SURROUND_TASK)

#: multiplier of the challenge-2 feature's log-amplitude scale in each task (module doc)
C2_TASK_STRENGTH: dict[str, float] = {
    CCD_TASK: 1.0, REST_TASK: 1.0,
    **{task: 0.5 for task in (*MOVIE_TASKS, SURROUND_TASK)},
    **{task: 1.0 for task in ACTIVE_TASKS},
}  # fmt: skip
#: probability that a subject has a given recording of an added task
AVAILABILITY = 0.9
_STREAM_BASE = 30  # random streams 30, 31, ...: one per task (CCD uses 10, RestingState 20)

EVENT_LEVELS: dict[str, str] = {
    "9999": "Recording start marker (no experimental meaning).",
    "video_start": "The movie starts.",
    "video_stop": "The movie ends.",
    "stim_ON": "A stimulus appears.",
    "fixpoint_ON": "The fixation point appears.",
    "task_start": "The task starts.",
    "task_stop": "The task ends.",
    "buttonPress": "A button press.",
}


def _timeline(rng: np.random.Generator, task: str, seconds: float):
    """Event rows ``(onset_ms, value, feedback)`` and the duration in s of one recording."""
    rows: list[tuple[int, str, str]] = []
    t = _ms(rng.uniform(0.05, 0.4))
    rows.append((t, "9999", "n/a"))
    t += _ms(rng.uniform(0.8, 1.5))
    stop = t + _ms(seconds)
    if task in MOVIE_TASKS:
        rows += [(t, "video_start", "n/a"), (stop, "video_stop", "n/a")]
    elif task == SURROUND_TASK:  # stimulus and fixation screens, alternating
        value = "stim_ON"
        while t < stop:
            rows.append((t, value, "n/a"))
            value = "fixpoint_ON" if value == "stim_ON" else "stim_ON"
            t += _ms(rng.uniform(1.6, 2.6))
    else:  # an active task: stimuli, most answered by a press
        rows.append((t, "task_start", "n/a"))
        t += _ms(rng.uniform(1.6, 2.6))
        while t < stop:
            rows.append((t, "stim_ON", "n/a"))
            if rng.random() < 0.7:
                rows.append((t + _ms(rng.uniform(0.3, 1.2)), "buttonPress", "n/a"))
            t += _ms(rng.uniform(1.6, 2.6))
        rows.append((stop, "task_stop", "n/a"))
    duration = math.ceil(stop / 1000.0 + rng.uniform(1.0, 2.5))
    return rows, duration


def availability_column(task: str, run: int | None) -> str:
    """participants.tsv availability column of a recording (``surroundSupp_1``, ``ThePresent``)."""
    return task if run is None else f"{task}_{run}"


def write_other_tasks(stage, subject, topo, params: dict, *, simulate, raw_artifacts,
                      write_recording) -> tuple[list[dict], set[str]]:
    """Write the subject's recordings of the tasks of ``params["tasks"]`` that this module
    handles; return the truth rows of the recordings and the availability columns."""
    seed, sfreq, raw_like = params["seed"], params["sfreq"], params["raw_like"]
    seconds = params["task_seconds"]
    recordings: list[dict] = []
    available: set[str] = set()
    for task_index, task in enumerate(OTHER_TASKS):
        if task not in params["tasks"]:
            continue
        for run in TASK_RUNS[task]:
            rng = _rng(seed, _STREAM_BASE + task_index, subject.index, run or 0)
            if rng.random() >= AVAILABILITY:
                continue
            rows, duration = _timeline(rng, task, seconds)
            strength = C2_TASK_STRENGTH[task]
            data = simulate(rng, subject, topo, int(duration * sfreq), sfreq, raw_like=raw_like,
                            c2_strength=strength)
            if raw_like:
                data += raw_artifacts(rng, topo, data.shape[1], sfreq)
            path = write_recording(stage, subject.subject_id, task, run, data, sfreq, rows,
                                   raw_like, EVENT_LEVELS)
            available.add(availability_column(task, run))
            recordings.append({"subject": subject.subject_id, "task": task, "run": run,
                               "path": path.relative_to(stage).as_posix(),
                               "duration": duration, "c2_strength": strength})
    return recordings, available
