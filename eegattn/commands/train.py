"""`eegattn train`: one challenge end to end into a new run folder.

``add_arguments`` is shared with ``challenges/challenge1.py`` and ``challenges/challenge2.py``.
Data-parallel: ``torchrun --nproc-per-node N -m eegattn train ...`` (the same options).
"""


from eegattn.commands.preprocess import BACKENDS

HELP = "train and evaluate a model on challenge 1 or 2 (synthetic release by default)"


def add_arguments(parser, challenge=None):
    if challenge is None:
        parser.add_argument("--challenge", type=int, choices=(1, 2), default=None,
                            help="1: CCD response time; 2: externalizing factor")
    else:
        parser.set_defaults(challenge=challenge)
    parser.add_argument("--root", default=None,
                        help="folder holding EEG2025r<N>[mini] releases (real HBN); "
                        "default: a synthetic release generated under --cache-dir")
    parser.add_argument("--releases", "--release", dest="releases", nargs="+", default=["R5"],
                        help="releases to load (e.g. R1 R2 R3)")
    parser.add_argument("--test-release", default=None,
                        help="hold this release out as the test set (train on the others)")
    parser.add_argument("--mini", action="store_true", help="use the mini releases")
    parser.add_argument("--model", default=None,
                        help="lightweight (default), lightweight_fast, improved, "
                        "lightweight_noattn, eegnex, ridge, or a foundation model: "
                        "steegformer, cbramod, labram (and *_tiny); with --init, the "
                        "folder's model")
    parser.add_argument("--model-options", default=None, type=_json_object,
                        help='model options as JSON, e.g. \'{"attention": "standard"}\'')
    parser.add_argument("--init", default=None, metavar="SPEC",
                        help="start from these weights: hf:ORG/NAME (a braindecode checkpoint "
                        "on the Hugging Face hub) or a folder written by `eegattn pretrain`, "
                        "`eegattn train` or braindecode's save_pretrained")
    parser.add_argument("--finetune", choices=("full", "frozen", "lora"), default="full",
                        help="what trains: every weight (full), the head only (frozen), or "
                        "LoRA adapters on the backbone + the head (lora, through peft)")
    parser.add_argument("--lora-options", default=None, type=_lora_json,
                        help='LoRA adapters as JSON: r (8), alpha (16), dropout (0.0), e.g. '
                        '\'{"r": 4}\'')
    parser.add_argument("--head", choices=("regression", "softargmax", "distribution"),
                        default=None,
                        help="how the model reads the response time: pooling + MLP "
                        "(regression), or a latency over the time tokens (softargmax, "
                        "distribution); the model's own default when not given")
    parser.add_argument("--augment", nargs="+", default=None, metavar="NAME",
                        help="training augmentations: time_shift, time_scale (they move the "
                        "response time with the signal), channels_dropout, gaussian_noise, "
                        "smooth_time_mask, mixup")
    parser.add_argument("--context", dest="context_s", type=float, default=None,
                        metavar="SECONDS",
                        help="challenge 1: cut training windows with this much signal on "
                        "each side (default 0.2 with time_shift/time_scale); the test uses "
                        "the exact +0.5..+2.5 s windows")
    parser.add_argument("--ensemble", type=int, default=1, metavar="K",
                        help="train K members and combine them into one model: one run "
                        "folder, one submission module")
    parser.add_argument("--ensemble-split", choices=("seeds", "folds", "bootstrap", "joint"),
                        default="seeds",
                        help="members differ by seed on one split (seeds..seed+K-1), each "
                        "holds out one of K subject folds (out-of-fold predictions), each "
                        "trains on its own bootstrap sample of the windows (bagging), or "
                        "all train together, rewarded for erring differently (negative "
                        "correlation learning, --ensemble-diversity)")
    parser.add_argument("--ensemble-diversity", type=float, default=0.5, metavar="W",
                        help="--ensemble-split joint: the weight in [0, 1] of the members' "
                        "spread in their joint loss (default 0.5, chosen on challenge 1; 0: "
                        "together, no penalty)")
    parser.add_argument("--ensemble-mix", type=_ensemble_mix, default=None, metavar="JSON",
                        help="members of different configurations: a JSON list of "
                        "model-option objects, member k taking entry k mod its length over "
                        "--model-options, e.g. '[{}, {\"head\": \"softargmax\"}]'; "
                        "default: all members alike")
    parser.add_argument("--ensemble-combine", choices=("mean", "stack", "calibrate"),
                        default="mean",
                        help="mean of the members; non-negative weights + intercept fitted on "
                        "the validation subjects (seeds, bootstrap); or the mean times a slope "
                        "plus an intercept fitted on held-out predictions (out-of-fold with "
                        "folds)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="the training forward pass in float32 (default) or under bf16 "
                        "autocast (GPUs with bf16 tensor cores)")
    parser.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                        help="challenge 2: HBN tasks to train on, or 'all' (default: "
                        "contrastChangeDetection); the test windows are the held-out "
                        "subjects' CCD windows, the task the challenge scores")
    parser.add_argument("--trial-rule", choices=("challenge", "current"), default=None,
                        help="challenge 1: the competition's CCD trial table (default; a "
                        "run's last trial is dropped) or eegdash 0.9's (it ends at "
                        "end_experiment)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=5,
                        help="early stopping: epochs without a better validation loss")
    parser.add_argument("--start-from-epoch", type=int, default=None,
                        help="early stopping ignores epochs up to this one (default: half of "
                        "--epochs; 0 counts from the first)")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="fraction of subjects held out for the test score (without "
                        "--test-release)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--subjects", type=int, default=24,
                        help="subjects per synthetic release")
    parser.add_argument("--cache-dir", default=None,
                        help="synthetic releases and window caches (default: ./cache or "
                        "$EEGATTN_CACHE)")
    parser.add_argument("--runs-dir", default="runs", help="run folders go here")
    parser.add_argument("--run-name", default=None)
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel recording reads")
    parser.add_argument("--backend", default=None, choices=BACKENDS,
                        help="engine of the recording reads: joblib's loky processes "
                        "(default) or dask (a Dask cluster, docs/scaling.md)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="with --backend dask: a running Dask scheduler, e.g. "
                        "tcp://HOST:8786 (default: --n-jobs local Dask workers)")
    parser.add_argument("--device", default=None,
                        help="cpu (default), cuda, cuda:N or auto; --resume keeps the run's "
                        "device unless this is given")
    parser.add_argument("--checkpoint-every", type=int, default=None,
                        help="also checkpoint every N training steps (default: each epoch)")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue a stopped run from its last checkpoint, with the "
                        "options it was started with (only --device, --n-jobs, --backend, "
                        "--scheduler and --quiet may be given beside it)")
    parser.add_argument("--quiet", action="store_true")


# options that may change when a run is resumed (where and how loudly it runs)
_RESUMABLE = {"resume", "device", "n_jobs", "backend", "scheduler", "quiet", "challenge",
              "_run", "command"}


def _json_object(text):
    import argparse

    from eegattn.utils.check import InvalidParameterError, parse_json_object

    try:
        return parse_json_object(text, "--model-options")
    except InvalidParameterError as err:  # argparse prints it as one usage error
        raise argparse.ArgumentTypeError(str(err)) from None


def _ensemble_mix(text):
    """A JSON list of model-option objects (checked by ``member_options``)."""
    import argparse
    import json

    from eegattn.models import member_options

    try:
        mix = json.loads(text)
        member_options(None, mix, 1)
    except ValueError:  # json.JSONDecodeError is one
        raise argparse.ArgumentTypeError(
            f"--ensemble-mix {text!r} is not a JSON list of model-option objects; give "
            'one per member, e.g. \'[{}, {"head": "softargmax"}]\'') from None
    return mix


def _lora_json(text):
    import argparse

    from eegattn.utils.check import InvalidParameterError, parse_json_object

    try:
        return parse_json_object(text, "--lora-options", example='{"r": 4}')
    except InvalidParameterError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run(args):
    from eegattn.commands.preprocess import check_parallel_arguments
    from eegattn.training.pipeline import resume_challenge, run_challenge
    from eegattn.training.signals import TrainingInterrupted

    verbose = 0 if args.quiet else 1
    parallel = dict(n_jobs=args.n_jobs, backend=args.backend, scheduler=args.scheduler)
    try:
        check_parallel_arguments(args)
        if args.resume:
            _refuse_changed_options(args)
            result = resume_challenge(args.resume, device=args.device, verbose=verbose,
                                      **parallel)
        else:
            if args.challenge is None:
                raise ValueError("--challenge is required (1 or 2), unless --resume RUN_DIR")
            result = run_challenge(
                args.challenge, root=args.root, releases=args.releases,
                test_release=args.test_release, mini=args.mini, model=args.model,
                model_options=args.model_options, epochs=args.epochs,
                batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                start_from_epoch=args.start_from_epoch, test_fraction=args.test_fraction,
                seed=args.seed, runs_dir=args.runs_dir, run_name=args.run_name,
                cache_dir=args.cache_dir, n_subjects=args.subjects, **parallel,
                device=args.device or "cpu", verbose=verbose,
                checkpoint_every=args.checkpoint_every,
                init=args.init, finetune=args.finetune, lora_options=args.lora_options,
                head=args.head, augment=args.augment, context_s=args.context_s,
                ensemble=args.ensemble, ensemble_combine=args.ensemble_combine,
                ensemble_split=args.ensemble_split, ensemble_mix=args.ensemble_mix,
                ensemble_diversity=args.ensemble_diversity, precision=args.precision,
                tasks=args.tasks, trial_rule=args.trial_rule,
            )
    except TrainingInterrupted as stop:
        import sys

        run_dir = getattr(stop, "run_dir", None) or args.resume
        saved = "checkpoint written; " if stop.checkpointed else ""
        print(f"eegattn train: stopped at epoch {stop.epoch + 1}, step {stop.step}; {saved}"
              f"continue with: eegattn train --resume {run_dir}", file=sys.stderr)
        return 130
    del result
    return 0


def _refuse_changed_options(args) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser, challenge=1)
    flags = {action.dest: action.option_strings[0] for action in parser._actions
             if action.option_strings}
    given = [key for key, value in vars(args).items()
             if key not in _RESUMABLE and value != parser.get_default(key)]
    if given:
        named = ", ".join(sorted(flags.get(key, "--" + key.replace("_", "-")) for key in given))
        raise ValueError(f"--resume continues a run with the options it was started with; "
                         f"drop {named} (only --device, --n-jobs, --backend, --scheduler "
                         "and --quiet may change)")
