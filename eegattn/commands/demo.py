"""`eegattn demo`: the main job on the embedded default data (what `make demo` runs).

Generates the synthetic HBN-like release if it is not cached yet, then runs challenge 1 end to
end with the lightweight attention model's fast preset and prints the results table (model,
mean predictor, oracle). Every run writes a new run folder.
"""

HELP = "challenge 1 end to end on the synthetic release (what `make demo` runs)"

DEMO_EPOCHS = 10
# The sparse-attention entry's lightweight model as its `lightweight_fast` preset: strided
# convolutions, position codes, max pooling beside the mean, feature-map and attention dropout
# (see the README). The entry's configuration scores like the mean predictor here; the preset
# beats it and the earlier demo options on most seeded splits and trains ~2.5x faster.
DEMO_MODEL = "lightweight_fast"
DEMO_MODEL_OPTIONS = "{}"


def add_arguments(parser):
    parser.add_argument("--epochs", type=int, default=DEMO_EPOCHS,
                        help=f"training epochs (default {DEMO_EPOCHS})")
    parser.add_argument("--model", default=DEMO_MODEL,
                        help=f"model name (default {DEMO_MODEL})")
    parser.add_argument("--model-options", default=DEMO_MODEL_OPTIONS,
                        help="model options as JSON, on top of the model's preset (default "
                        "none), e.g. '{\"channel_dropout\": 0.2}'")
    parser.add_argument("--subjects", type=int, default=24, help="synthetic subjects")
    parser.add_argument("--cache-dir", default=None,
                        help="synthetic release and window cache (default ./cache or "
                        "$EEGATTN_CACHE)")
    parser.add_argument("--runs-dir", default="runs", help="where the run folder is written")


def run(args):
    from eegattn.models import available_models
    from eegattn.utils.check import check_option, check_positive_int, parse_json_object

    # every option checked before anything is generated or trained
    check_option("--model", args.model, available_models())
    options = parse_json_object(args.model_options, "--model-options")
    check_positive_int(args.epochs, "--epochs")
    check_positive_int(args.subjects, "--subjects")

    from eegattn.training.pipeline import run_challenge

    print(f"eegattn demo: challenge 1 (response time) with the {args.model} model {options}, "
          f"{args.epochs} epochs, on a {args.subjects}-subject synthetic release\n")
    run_challenge(1, model=args.model, model_options=options, epochs=args.epochs,
                  n_subjects=args.subjects,
                  cache_dir=args.cache_dir, runs_dir=args.runs_dir, verbose=1)
    return 0
