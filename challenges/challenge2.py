"""Challenge 2: the externalizing factor from 2 s EEG crops.

A thin script over `eegattn.training.pipeline.run_challenge`; the same as
`eegattn train --challenge 2`. Example::

    python challenges/challenge2.py --model lightweight --epochs 10
    python challenges/challenge2.py --root /data/hbn --releases R1 R2 R3 --test-release R5
"""

import sys

from eegattn.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("train", __doc__.splitlines()[0], challenge=2))
