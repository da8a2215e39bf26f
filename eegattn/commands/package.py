"""`eegattn package`: two run folders -> the challenge's flat submission zip."""

HELP = "pack a challenge-1 and a challenge-2 run into a submission zip (TorchScript models)"


def add_arguments(parser):
    parser.add_argument("run_c1", metavar="RUN1", help="run folder of the challenge-1 model")
    parser.add_argument("run_c2", metavar="RUN2", help="run folder of the challenge-2 model")
    parser.add_argument(
        "-o",
        "--output",
        default="submission.zip",
        help="zip to write (default: submission.zip); never overwritten without --force",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing zip (atomically)")


def run(args):
    from eegattn.submission.package import package_submission

    result = package_submission(args.run_c1, args.run_c2, args.output, force=args.force)
    print(result.summary())
    print(f"next: eegattn validate-submission {result.path}")
    return 0
