"""Challenge 1: response time on Contrast Change Detection trials.

A thin script over `eegattn.training.pipeline.run_challenge`; the same as
`eegattn train --challenge 1`. Example::

    python challenges/challenge1.py --model lightweight --epochs 10
    python challenges/challenge1.py --root /data/hbn --releases R1 R2 R3 --test-release R5
"""

import argparse
import sys

from eegattn.commands import train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    train.add_arguments(parser, challenge=1)
    return train.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
