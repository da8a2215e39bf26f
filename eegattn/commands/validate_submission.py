"""`eegattn validate-submission`: run a submission zip the way the challenge server would."""

HELP = (
    "check a submission zip in a fresh Python without eegattn (harness sequence, shapes, "
    "determinism, timing) and optionally score it on a release"
)


def add_arguments(parser):
    parser.add_argument("zip", metavar="ZIP", help="the submission zip")
    parser.add_argument(
        "--release",
        metavar="DIR",
        default=None,
        help="release folder (EEG2025r<N>[mini]) to score both challenges on, with the "
        "windows and crops of the challenge's scoring ingestion (every subject, CCD only)",
    )
    parser.add_argument(
        "--trial-rule",
        choices=("challenge", "current"),
        default="challenge",
        help="CCD trial table for challenge 1's scoring windows: the competition's eegdash "
        "(default; a run's last trial is dropped) or eegdash 0.9's (it ends at end_experiment)",
    )
    parser.add_argument(
        "--device", default="cpu", help="DEVICE passed to Submission: cpu (default) or cuda"
    )
    parser.add_argument(
        "--python",
        default=None,
        help="interpreter for the harness, e.g. a Python 3.10 + torch 2.2 environment "
        "(default: $EEGATTN_SUBMISSION_PYTHON or this Python)",
    )
    parser.add_argument(
        "--max-windows",
        type=int,
        default=None,
        help="score at most this many windows per challenge (evenly spread)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the test batches and crops")
    parser.add_argument(
        "--json", metavar="FILE", default=None, help="also write the report as JSON to FILE"
    )


def run(args):
    import dataclasses
    from pathlib import Path

    from eegattn.submission.validate import validate_submission
    from eegattn.utils.check import check_positive_int
    from eegattn.utils.io import write_json_atomic

    check_positive_int(args.max_windows, "--max-windows", allow_none=True)
    report = validate_submission(
        args.zip,
        release_root=args.release,
        trial_rule=args.trial_rule,
        device=args.device,
        python=args.python,
        max_windows=args.max_windows,
        seed=args.seed,
    )
    print(report.format())
    if args.json:
        out = Path(args.json)
        if out.exists():
            raise FileExistsError(f"{out} already exists; choose another --json path")
        payload = {
            "zip": str(report.zip_path),
            "ok": report.ok,
            "device": report.device,
            "python": report.python,
            "torch": report.torch,
            "files": report.files,
            "size_bytes": report.size_bytes,
            "measurements": report.measurements,
            "scores": report.scores,
            "findings": [dataclasses.asdict(f) for f in report.findings],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        # a NaN score (a model that predicts NaN) is written as NaN, as Python's json reads it
        write_json_atomic(out, payload, allow_nan=True, overwrite=False)
    return 0 if report.ok else 1
