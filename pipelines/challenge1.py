"""Challenge 1 data pipeline: CCD trials -> stimulus-locked 2 s windows -> window cache.

One 2 s window from +0.5 s to +2.5 s after each stimulus that has a response (200 samples at
100 Hz), target ``rt_from_stimulus`` in seconds; identical windows and targets to the
challenge starter kit (eegdash + braindecode). Reads local releases ``<root>/EEG2025r<N>``.

    python pipelines/challenge1.py --root ~/hbn --release R1 R2 R3 --n-jobs 4

A second run with the same inputs and options reads the windows from the cache at once.
"""

from __future__ import annotations

import argparse
import sys

from eegattn.commands.preprocess import add_window_arguments, window_options

CHALLENGE = 1


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
