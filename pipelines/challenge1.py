"""Challenge 1 data pipeline: CCD trials -> stimulus-locked 2 s windows -> window cache.

One 2 s window from +0.5 s to +2.5 s after each stimulus that has a response (200 samples at
100 Hz), target ``rt_from_stimulus`` in seconds; identical windows and targets to the
challenge starter kit (eegdash + braindecode). Reads local releases ``<root>/EEG2025r<N>``.

    python pipelines/challenge1.py --root ~/hbn --release R1 R2 R3 --n-jobs 4

A second run with the same inputs and options reads the windows from the cache at once.
"""

import sys

from eegattn.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("preprocess", __doc__.splitlines()[0], challenge=1))
