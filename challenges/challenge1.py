"""Challenge 1: response time on Contrast Change Detection trials.

A thin script over `eegattn.training.pipeline.run_challenge`; the same as
`eegattn train --challenge 1`. Example::

    python challenges/challenge1.py --model lightweight --epochs 10
    python challenges/challenge1.py --root /data/hbn --releases R1 R2 R3 --test-release R5
"""

import sys

from eegattn.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("train", __doc__.splitlines()[0], challenge=1))
