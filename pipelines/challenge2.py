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

from __future__ import annotations

import argparse
import sys

from eegattn.commands.preprocess import add_window_arguments, window_options

CHALLENGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_window_arguments(parser, challenge=False)
    parser.add_argument("--summary-json", default=None,
                        help="also write what was kept / dropped to this JSON file")
    args = parser.parse_args(argv)

    from eegattn.data.cache import describe_windows, load_challenge_windows

    try:
        windows = load_challenge_windows(CHALLENGE, **window_options(args))
    except (ValueError, FileNotFoundError) as err:
        print(f"challenge{CHALLENGE}: error: {err}", file=sys.stderr)
        return 2
    print(describe_windows(windows))
    if args.summary_json:
        from eegattn.data.cache import write_summary

        write_summary(windows, args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
