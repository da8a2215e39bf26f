"""`eegattn pretrain`: self-supervised pretraining on windows of HBN tasks, without targets.

Example::

    eegattn pretrain --tasks RestingState --model lightweight_fast --epochs 20 --out pre/rest
    eegattn train --challenge 1 --init pre/rest

Masked reconstruction (:mod:`eegattn.training.pretrain`): whole time patches and channels of
each 2 s window are hidden and the model's time tokens reconstruct them. The folder written
is what ``eegattn train --init`` (and ``EEGAttentionRegressor(init=...)``) start from. Without
``--root`` the synthetic release ``eegattn train`` uses is generated (or reused). Standard
library only at module level (``eegattn --help`` stays fast).
"""

from __future__ import annotations

HELP = "pretrain a model on unlabeled windows of HBN tasks (masked reconstruction)"


def add_arguments(parser):
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="new folder for the pretrained model (must not exist or be empty)")
    parser.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                        help="HBN tasks to take windows from, or 'all' (default: every task "
                        "on disk except contrastChangeDetection)")
    parser.add_argument("--root", default=None,
                        help="folder holding EEG2025r<N>[mini] releases (default: the "
                        "synthetic release under --cache-dir)")
    parser.add_argument("--releases", "--release", dest="releases", nargs="+", default=["R5"])
    parser.add_argument("--mini", action="store_true", help="use the mini releases")
    parser.add_argument("--model", default="lightweight_fast",
                        help="a model with time tokens: lightweight* or a foundation model "
                        "(steegformer, cbramod, labram, *_tiny)")
    parser.add_argument("--model-options", default=None, type=_json_object,
                        help="model options as JSON")
    parser.add_argument("--init", default=None, metavar="SPEC",
                        help="continue from these weights (hf:ORG/NAME or a folder)")
    parser.add_argument("--objective", choices=("masked",), default="masked",
                        help="masked: reconstruct hidden time patches and channels")
    parser.add_argument("--mask-ratio", type=float, default=0.5,
                        help="fraction of time patches hidden per window (0.5)")
    parser.add_argument("--channel-mask-ratio", type=float, default=0.25,
                        help="fraction of channels hidden per window (0.25)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--window-s", type=float, default=2.0, help="window length (s)")
    parser.add_argument("--stride-s", type=float, default=2.0, help="window stride (s)")
    parser.add_argument("--max-windows-per-recording", type=int, default=None, metavar="N")
    parser.add_argument("--exclude-subjects", nargs="+", default=(), metavar="ID",
                        help="leave these subjects out (e.g. those a model will be tested on)")
    parser.add_argument("--heldout-fraction", type=float, default=0.1,
                        help="subjects kept out to measure the reconstruction loss (0.1)")
    parser.add_argument("--subjects", type=int, default=24,
                        help="subjects of the synthetic release (without --root)")
    parser.add_argument("--cache-dir", default=None,
                        help="synthetic releases (default: ./cache or $EEGATTN_CACHE)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--quiet", action="store_true")


def _json_object(text):
    import argparse

    from eegattn.utils.check import InvalidParameterError, parse_json_object

    try:
        return parse_json_object(text, "--model-options")
    except InvalidParameterError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _check(args) -> None:
    """Every option that can be checked without data, before any data is read or written."""
    from pathlib import Path

    from eegattn.utils.check import (
        check_fraction,
        check_positive_int,
        check_positive_number,
    )

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"--out {out} exists and is not an empty folder; choose another "
                              "folder (a pretraining never overwrites one)")
    if args.root is not None and not Path(args.root).is_dir():
        raise FileNotFoundError(f"--root {args.root} does not exist; give the folder that "
                                "holds EEG2025r<N> folders, or leave --root out for the "
                                "synthetic release")
    check_positive_int(args.epochs, "--epochs")
    check_positive_int(args.batch_size, "--batch-size")
    check_positive_int(args.max_windows_per_recording, "--max-windows-per-recording",
                       allow_none=True)
    check_positive_number(args.lr, "--lr")
    check_positive_number(args.window_s, "--window-s", unit="seconds")
    check_positive_number(args.stride_s, "--stride-s", unit="seconds")
    check_fraction(args.heldout_fraction, "--heldout-fraction", low_inclusive=True)
    for name in ("mask_ratio", "channel_mask_ratio"):
        check_fraction(getattr(args, name), "--" + name.replace("_", "-"), low_inclusive=True)
    if args.tasks is not None:
        from eegattn.data.hbn import resolve_tasks

        resolve_tasks(args.tasks)


def run(args) -> int:
    _check(args)
    from eegattn.models import available_models

    model_options = args.model_options
    if args.model not in available_models():
        raise ValueError(f"unknown model {args.model!r}; choose one of "
                         f"{', '.join(available_models())}")
    verbose = 0 if args.quiet else 1
    if args.init is not None:  # a hub id without a network fails here, before any data
        from eegattn.training.finetune import init_model_options, resolve_init

        args.model, model_options = init_model_options(args.model, model_options,
                                                       resolve_init(args.init))
    # the model builds on the window shape before any recording is read (bad options)
    from eegattn.training.estimator import instantiate_model
    from eegattn.training.pretrain import MaskedReconstruction

    probe = instantiate_model(args.model, model_options, n_chans=129,
                              n_times=int(round(args.window_s * 100)), sfreq=100.0)
    MaskedReconstruction(probe, 129, int(round(args.window_s * 100)),
                         mask_ratio=args.mask_ratio,
                         channel_mask_ratio=args.channel_mask_ratio).remove_hook()
    del probe

    root = args.root
    if root is None:
        from eegattn.training.pipeline import prepare_synthetic

        root = prepare_synthetic([r.upper() for r in args.releases], cache_dir=args.cache_dir,
                                 n_subjects=args.subjects, seed=0, mini=args.mini)
    from eegattn.training.pretrain import pretrain, unlabeled_windows, write_pretrain_folder

    windows = unlabeled_windows(
        root, args.releases, args.tasks, mini=args.mini, window_s=args.window_s,
        stride_s=args.stride_s, exclude_subjects=args.exclude_subjects,
        max_windows_per_recording=args.max_windows_per_recording, verbose=verbose,
    )
    if verbose:
        print(f"{len(windows)} windows of {', '.join(windows.info['tasks'])} from "
              f"{len(set(windows.groups))} subjects", flush=True)
    result = pretrain(
        windows, model=args.model, model_options=model_options, init=args.init,
        objective=args.objective, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        mask_ratio=args.mask_ratio, channel_mask_ratio=args.channel_mask_ratio,
        heldout_fraction=args.heldout_fraction, seed=args.seed, device=args.device,
        verbose=verbose,
    )
    out = write_pretrain_folder(args.out, result, model=args.model,
                                model_options=model_options,
                                extra={"releases": [r.upper() for r in args.releases],
                                       "root": str(root)})
    if verbose:
        m = result.metrics
        if m["heldout_loss"] is not None:
            print(f"held-out reconstruction loss {m['heldout_loss']:.4f} (predicting zeros: "
                  f"{m['heldout_zero_loss']:.4f}) on {m['n_heldout_windows']} windows")
        print(f"wrote {out}; fine-tune with: eegattn train --challenge 1 --init {out}")
    return 0
