"""Challenge 2: the externalizing factor from 2 s EEG crops.

A thin script over `eegattn.training.pipeline.run_challenge`; the same as
`eegattn train --challenge 2`. Example::

    python challenges/challenge2.py --model lightweight --epochs 10
    python challenges/challenge2.py --root /data/hbn --releases R1 R2 R3 --test-release R5
"""

import argparse
import sys

from eegattn.commands import train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    train.add_arguments(parser, challenge=2)
    return train.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
