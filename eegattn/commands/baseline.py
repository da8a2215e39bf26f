"""`eegattn baseline vision|language`: the attention mechanisms on images and text.

Examples::

    eegattn baseline vision                       # Inattention NotaBene's CNNs + ViTs, 8x8 digits
    eegattn baseline vision --cifar ~/data/cifar-10-batches-py --epochs 20
    eegattn baseline language                     # recall, selective copy, byte-level text
    eegattn baseline language --corpus ~/data/wikitext-103 --tasks text
    eegattn baseline language --mechanisms standard neural:first   # DiGiugno & Mahmood's placement

Each run writes ``table.md``, ``results.json`` and PNG plots into a new folder
``<out>/baseline-<kind>-YYYYmmdd-HHMMSS`` (or ``--run-dir``, which must not exist yet).
Nothing is downloaded. Standard library only at module level (``eegattn --help`` stays fast).
"""

from __future__ import annotations

from eegattn.utils.check import InvalidParameterError, parse_json_object

HELP = "cross-domain baselines: the attention mechanisms on images (vision) and text (language)"


def _common(parser) -> None:
    parser.add_argument("--out", default="runs",
                        help="folder that receives the new run folder (default: runs)")
    parser.add_argument("--run-dir", default=None,
                        help="exact run folder to create instead (refused if it exists)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                        help="model seeds; results are mean ± std over them")
    parser.add_argument("--tiny", action="store_true",
                        help="seconds-long settings (what the tests run)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default: 1; tiny models gain little from more "
                        "and suffer when the cores are shared)")
    parser.add_argument("--attention-options", default=None, metavar="JSON",
                        help='per-mechanism options, e.g. \'{"neural": {"projection_dim": 4}}\'')
    parser.add_argument("--quiet", action="store_true", help="print only the run folder")


def add_arguments(parser):
    sub = parser.add_subparsers(dest="domain", metavar="DOMAIN")
    sub.required = True

    vision = sub.add_parser(
        "vision", help="Inattention NotaBene's baseline vs Inattention CNN, a ViT per mechanism",
        description="Inattention NotaBene's baseline CNN vs Inattention CNN (faithful and relaxed "
        "modes) and a "
        "small ViT per attention mechanism, on scikit-learn's 8x8 digits (default) or a local "
        "CIFAR-10 folder (--cifar). 'Best' is chosen on a validation split, never on test.",
    )
    vision.add_argument("--cifar", default=None, metavar="DIR",
                        help="CIFAR-10 python-pickle folder (data_batch_1..5, test_batch; "
                        "may contain cifar-10-batches-py/); default: the digits")
    vision.add_argument("--models", nargs="*", default=None, metavar="MODEL",
                        help="CNNs: cnn, inattention-seed, inattention-relaxed (default: all)")
    vision.add_argument("--vit-attention", nargs="*", default=None, metavar="NAME",
                        help="ViT mechanisms (default: standard neural sparse linear; none "
                        "with an empty list)")
    vision.add_argument("--epochs", type=int, default=None, help="epochs per run (default 10)")
    vision.add_argument("--batch-size", type=int, default=None, help="default 32")
    vision.add_argument("--lr", type=float, default=None, help="Adam learning rate (1e-3)")
    vision.add_argument("--max-train", type=int, default=None,
                        help="subsample the training split to this many images")
    vision.add_argument("--max-test", type=int, default=None,
                        help="subsample the CIFAR-10 test batch to this many images")
    _common(vision)

    language = sub.add_parser(
        "language", help="a causal transformer LM per mechanism: recall, copying, text",
        description="A small causal transformer LM per attention mechanism on synthetic "
        "associative recall and selective copying (generated on the fly) and byte-level text "
        "(scikit-learn's dataset descriptions by default, or --corpus DIR).",
    )
    language.add_argument("--mechanisms", nargs="+", default=None, metavar="NAME",
                          help="causal mechanisms; NAME:first puts NAME in the first block "
                          "only (as DiGiugno & Mahmood). Default: standard neural selective "
                          "linear local")
    language.add_argument("--first-layer-only", action="store_true",
                          help="every non-standard mechanism in the first block only")
    language.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                          help="recall, copy, text (default: all three)")
    language.add_argument("--corpus", default=None, metavar="DIR",
                          help="local text folder for the text task (wiki.train.tokens, "
                          "wiki.valid.tokens, wiki.test.tokens, or .txt files)")
    language.add_argument("--steps", type=int, default=None, help="training steps (200)")
    language.add_argument("--batch-size", type=int, default=None, help="default 32")
    language.add_argument("--lr", type=float, default=None, help="peak AdamW lr (3e-3)")
    language.add_argument("--dim", type=int, default=None, help="model width (64)")
    language.add_argument("--depth", type=int, default=None, help="blocks (2)")
    language.add_argument("--heads", type=int, default=None, help="heads (4)")
    language.add_argument("--seq-len", type=int, default=None,
                          help="text window length in bytes (32)")
    language.add_argument("--no-token-shift", action="store_true",
                          help="plain transformer without the previous-token shift")
    language.add_argument("--max-train-bytes", type=int, default=None,
                          help="bytes of training text read from --corpus (8000000)")
    _common(language)


def _attention_options(text):
    if text is None:
        return {}
    example = '{"local": {"window": 4}}'
    value = parse_json_object(text, "--attention-options", example=example)
    for name, options in value.items():
        if not isinstance(options, dict):
            raise InvalidParameterError(
                f"Invalid value for the '--attention-options' parameter. It must map mechanism "
                f"names to option dicts, but got {options!r} for {name!r}. For example "
                f"'{example}'."
            )
    return value


def _given(args, names) -> dict:
    """The options the user set (argparse default None = not given)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _vision_config(args):
    from eegattn.baselines.vision import VisionConfig

    options = _given(args, ("epochs", "batch_size", "lr", "max_train", "max_test"))
    if args.models is not None:
        options["models"] = tuple(args.models)
    if args.vit_attention is not None:
        options["vit_attention"] = tuple(args.vit_attention)
    if args.seeds is not None:
        options["seeds"] = tuple(args.seeds)
    if args.cifar is not None:
        options.update(dataset="cifar10", cifar=args.cifar)
    options.update(device=args.device, threads=args.threads,
                   attention_options=_attention_options(args.attention_options))
    return VisionConfig.tiny(**options) if args.tiny else VisionConfig(**options)


def _language_config(args):
    from eegattn.baselines.language import LanguageConfig, parse_mechanism

    options = _given(args, ("steps", "batch_size", "lr", "dim", "depth", "heads", "seq_len",
                            "corpus", "max_train_bytes"))
    if args.tasks is not None:
        options["tasks"] = tuple(args.tasks)
    if args.seeds is not None:
        options["seeds"] = tuple(args.seeds)
    config = LanguageConfig.tiny() if args.tiny else LanguageConfig()
    mechanisms = tuple(args.mechanisms) if args.mechanisms is not None else config.mechanisms
    if args.first_layer_only:
        specs = []
        for spec in mechanisms:
            name, _ = parse_mechanism(spec)
            specs.append(name if name == "standard" else f"{name}:first")
        mechanisms = tuple(dict.fromkeys(specs))
    options.update(mechanisms=mechanisms, device=args.device, threads=args.threads,
                   token_shift=not args.no_token_shift,
                   attention_options=_attention_options(args.attention_options))
    return LanguageConfig.tiny(**options) if args.tiny else LanguageConfig(**options)


def run(args) -> int:
    from eegattn.baselines import make_run_dir

    if args.domain == "vision":
        from eegattn.baselines.vision import run_vision_baseline as runner

        config = _vision_config(args)
    else:
        from eegattn.baselines.language import run_language_baseline as runner

        config = _language_config(args)
    config.check()  # refuse bad settings and missing data folders before a folder is made
    run_dir = make_run_dir(args.out, f"baseline-{args.domain}", args.run_dir)
    log = None if args.quiet else print
    if log:
        log(f"run folder: {run_dir}")
    runner(config, run_dir, log=log)
    if args.quiet:
        print(run_dir)
    else:
        print((run_dir / "table.md").read_text(encoding="utf-8"))
    return 0
