"""Challenge 2 data pipeline: recordings -> 4 s windows every 2 s -> window cache.

Fixed 4 s windows with a 2 s stride from the start of every recording (400 samples at 100 Hz),
target ``externalizing`` from participants.tsv; the random 2 s crops are taken later by the
estimator. contrastChangeDetection by default (as the starter kit), other tasks with
``--tasks``; recordings shorter than 4 s, without a target or without the 129 channels are
dropped and counted. Reads local releases ``<root>/EEG2025r<N>``.

    python pipelines/challenge2.py --root ~/hbn --release R1 R2 \\
        --tasks contrastChangeDetection RestingState

A second run with the same inputs and options reads the windows from the cache at once.
"""

import sys

from eegattn.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("preprocess", __doc__.splitlines()[0], challenge=2))
