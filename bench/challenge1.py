"""Challenge 1 as the winners framed it: heads that read time, label-moving augmentation,
ensembles, against the ridge floor and the mean predictor, over subject splits.

Protocol (the model benchmark's, ``bench/models.py``): the default synthetic release
(``cache/EEG2025r5``, 24 subjects, as ``make demo``), challenge-1 windows, a seeded
subject-wise split per seed (25 % of the subjects held out), every configuration trained
with the same epochs (10), batch (32), AdamW at 1e-3 with the cosine schedule and no early
stopping, test NRMSE on the held-out subjects' exact +0.5..+2.5 s windows. Label-moving
augmentation trains on windows cut +0.3..+2.7 s (``--context``) and reads the exact window
for evaluation. Every configuration sees the same splits; the table gives mean NRMSE, the
paired difference against ``lightweight_fast`` (regression head, no augmentation: the
default before this benchmark) with its standard error, wins per split, fit time and
training windows per second. The ridge floor and the mean predictor sit beside them.

Say which splits chose settings: pass them with ``--seeds`` and record them in the docs;
report on fresh ones. An ensemble is scored against its mean member and its best member on
the test split; with ``--valid-fraction`` also against the member best on held-out training
subjects, the one a user could choose.

    .venv/bin/python bench/challenge1.py --seeds 10 11 12 --out docs/results/challenge1.json
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import _common as common  # noqa: E402

BASELINE = "fast"
#: the time heads as first built, each token scored alone (the unsuffixed time-head names
#: below; the -kN names score each token from the N around it, 15 being the default now)
KERNEL_1 = {"head_options": {"kernel": 1}}
#: name -> (registry model, model options, estimator options)
CONFIGS = {
    "fast": ("lightweight_fast", {}, {}),
    "fast+softargmax": ("lightweight_fast", {"head": "softargmax", **KERNEL_1}, {}),
    "fast+distribution": ("lightweight_fast", {"head": "distribution", **KERNEL_1}, {}),
    "fast+distribution-w1": ("lightweight_fast", {"head": "distribution", "head_options": {
        "loss": "wasserstein", "kernel": 1}}, {}),
    "fast+shift": ("lightweight_fast", {}, {"augment": ["time_shift"]}),
    "fast+softargmax+shift": ("lightweight_fast", {"head": "softargmax", **KERNEL_1},
                              {"augment": ["time_shift"]}),
    "fast+distribution+shift": ("lightweight_fast", {"head": "distribution", **KERNEL_1},
                                {"augment": ["time_shift"]}),
    "fast+shift+scale": ("lightweight_fast", {}, {"augment": ["time_shift", "time_scale"]}),
    "fast+softargmax+shift+scale": ("lightweight_fast", {"head": "softargmax", **KERNEL_1},
                                    {"augment": ["time_shift", "time_scale"]}),
    "fast+shift+scale+drop": ("lightweight_fast", {}, {"augment": [
        "time_shift", "time_scale", "channels_dropout"]}),
    "fast+shift+scale x2 epochs": ("lightweight_fast", {}, {
        "augment": ["time_shift", "time_scale"], "epochs_factor": 2}),
    "fast+shift+scale+drop x2 epochs": ("lightweight_fast", {}, {"augment": [
        "time_shift", "time_scale", "channels_dropout"], "epochs_factor": 2}),
    "fast+softargmax+shift x2 epochs": ("lightweight_fast", {"head": "softargmax", **KERNEL_1}, {
        "augment": ["time_shift"], "epochs_factor": 2}),
    # the time heads scoring each token from the k tokens around it (heads.TokenScorer)
    **{f"fast+{head}-k{k}+shift": ("lightweight_fast", {"head": head, "head_options": {
        "kernel": k}}, {"augment": ["time_shift"]})
       for head in ("softargmax", "distribution") for k in (5, 9, 15, 25)},
    **{f"fast+{head}-k{k}": ("lightweight_fast", {"head": head, "head_options": {
        "kernel": k}}, {}) for head in ("softargmax", "distribution") for k in (5, 9, 15, 25)},
    **{f"fast+{head}-k{k}+shift+scale+drop": (
        "lightweight_fast", {"head": head, "head_options": {"kernel": k}},
        {"augment": ["time_shift", "time_scale", "channels_dropout"]})
       for head in ("distribution", "softargmax") for k in (9, 15, 25)},
    "ridge": ("ridge", {}, {}),
    "eegnex": ("eegnex", {}, {}),  # braindecode's EEGNeX behind the input normalisation
}

#: the default (distribution head, kernel 15, time_shift + time_scale + channels_dropout) with
#: one architecture option changed: members that should disagree more than seeds while
#: staying about as good ("default@NAME" configurations, pooled by bench/ensemble_members.py)
ARCHITECTURES = {
    "standard-attention": {"attention": "standard"},
    "linear-attention": {"attention": "linear"},
    "local-attention": {"attention": "local"},
    "gelu": {"activation": "gelu"},
    "kernels-11-7": {"kernel_sizes": (11, 7)},
    "two-blocks": {"n_attention_blocks": 2},
    # stride 2 then 2: 50 tokens of 40 ms; the head reads 29 of them (the default's 1.2 s)
    "tokens-50": {"pool_sizes": (2, 2), "head_options": {"kernel": 29}},
}
_DEFAULT = CONFIGS["fast+distribution-k15+shift+scale+drop"]
CONFIGS.update({f"default@{name}": (_DEFAULT[0], {**_DEFAULT[1], **options}, _DEFAULT[2])
                for name, options in ARCHITECTURES.items()})

#: mixes of member model options (``ensemble_mix``, entry k to member k mod len) for
#: ``--mix-ensemble-of``; "time_heads": both time heads at kernels 9, 15 and 25, the default
#: first, chosen on splits 10-11 with bench/ensemble_members.py (docs/benchmarks.md,
#: "Ensembles of mixed time heads")
MIXES = {
    "time_heads": [{"head": head, "head_options": {"kernel": k}} for head, k in (
        ("distribution", 15), ("softargmax", 15), ("distribution", 25), ("distribution", 9),
        ("softargmax", 25))],
}


#: the ensembles trained as one estimator fit (``--KIND-ensemble-of``), with their help
ENSEMBLE_KINDS = {
    "fold": "also train --ensemble members of each named config on subject folds "
            "(ensemble_split='folds') and score their mean and the mean calibrated on the "
            "out-of-fold predictions",
    "mix": "also train --ensemble members of each named config whose heads follow --mix "
           "(ensemble_mix; the config's augmentation) and score their mean",
    "bootstrap": "also train --ensemble members of each named config, each on its own "
                 "bootstrap sample of the training windows within subjects "
                 "(ensemble_split='bootstrap', bagging), and score their mean",
    "seed": "also train --ensemble seeds of each named config in one estimator fit "
            "(ensemble_split='seeds', member k seed split + k) and score their mean; unlike "
            "--ensemble-of, --valid-fraction applies",
    "joint": "also train --ensemble members of each named config together "
             "(ensemble_split='joint', negative correlation learning), once per --diversity, "
             "and score their mean",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS),
                        choices=list(CONFIGS))
    parser.add_argument("--ensemble", type=int, default=0,
                        help="also train this many seeds of each named config (--ensemble-of) "
                        "and score their mean")
    parser.add_argument("--ensemble-of", nargs="*", default=[], choices=list(CONFIGS))
    # one estimator fit per ensemble (--fold-, --mix-, --bootstrap-, --seed-, --joint-)
    for kind, text in ENSEMBLE_KINDS.items():
        parser.add_argument(f"--{kind}-ensemble-of", nargs="*", default=[],
                            choices=list(CONFIGS), help=text)
    parser.add_argument("--diversity", type=float, nargs="+", default=[0.5],
                        help="the joint ensembles' ensemble_diversity values in [0, 1] (one "
                        "row each)")
    parser.add_argument("--valid-fraction", type=float, default=0.0,
                        help="ensembles of one estimator fit (--seed-, --mix-, --bootstrap-, "
                        "--joint-ensemble-of) hold out this share of the training "
                        "subjects, train on the rest, and name the member best on them: the "
                        "member a user could choose without the test subjects")
    parser.add_argument("--mix", default="time_heads", choices=list(MIXES),
                        help="the members' model options of --mix-ensemble-of (MIXES)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--context", type=float, default=0.2)
    parser.add_argument("--n-subjects", type=int, default=24)
    parser.add_argument("--cache", default=str(REPO / "cache"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="merge results over disjoint splits into --out; nothing is trained")
    parser.add_argument("--from-log", nargs="+", default=None, metavar="LOG",
                        help="rebuild the results of stopped runs from their printed lines "
                        "(complete splits only; the references are recomputed); with --out")
    args = parser.parse_args(argv)
    one_fit = (args.seed_ensemble_of or args.mix_ensemble_of or args.bootstrap_ensemble_of
               or args.joint_ensemble_of)
    if (args.fold_ensemble_of or one_fit) and args.ensemble < 2:
        parser.error("--fold-, --seed-, --mix-, --bootstrap- and --joint-ensemble-of train "
                     "ensembles of --ensemble members; give --ensemble 2 or more")
    if any(not 0 <= d <= 1 for d in args.diversity):
        parser.error(f"--diversity values must be in [0, 1], got {args.diversity}")
    if not 0 <= args.valid_fraction < 1:
        parser.error(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
    if args.valid_fraction and not one_fit:
        parser.error("--valid-fraction holds out subjects of --seed-, --mix-, --bootstrap- "
                     "or --joint-ensemble-of; name one of them")
    if args.mix_ensemble_of and args.ensemble != len(MIXES[args.mix]):
        parser.error(f"--mix {args.mix} has {len(MIXES[args.mix])} entries; give --ensemble "
                     f"{len(MIXES[args.mix])} (one member each)")
    return args


@dataclass
class Data:
    """Challenge-1 windows of the default synthetic release: ``exact`` (+0.5..+2.5 s),
    ``wide`` (with ``context`` seconds each side, for label-moving augmentation), the exact
    window's start inside the wide one (samples) and the oracle's predictions."""

    exact: object
    wide: object
    anchor: int
    oracle: object


def load_data(args) -> Data:
    """The release and its windows (generated and cached on first use), torch threads set."""
    import warnings

    import numpy as np
    import torch

    warnings.simplefilter("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    from eegattn.data.cache import load_challenge_windows
    from eegattn.data.synthetic import oracle_predict
    from eegattn.training.pipeline import prepare_synthetic

    root = prepare_synthetic(["R5"], cache_dir=args.cache, n_subjects=args.n_subjects)
    windows_dir = Path(args.cache) / "windows"
    exact = load_challenge_windows(1, root=root, cache_dir=windows_dir, progress=False)
    wide = load_challenge_windows(1, root=root, cache_dir=windows_dir, progress=False,
                                  shift_after_stimulus_s=0.5 - args.context,
                                  window_s=2.0 + 2 * args.context)
    oracle = oracle_predict(Path(root) / "EEG2025r5", 1, X=np.asarray(exact.X),
                            sfreq=exact.sfreq)
    return Data(exact, wide, int(round(args.context * exact.sfreq)), oracle)


def fit_config(data: Data, name: str, seed: int, split, *, epochs: int, batch: int,
               return_estimator: bool = False, **extra):
    """Train configuration ``name`` (plus ``extra`` estimator options, e.g. an ensemble) on
    the split's training subjects: its test predictions (n,), or the fitted estimator with
    ``return_estimator``; fit seconds; training windows/s."""
    import numpy as np

    from eegattn.training.estimator import EEGAttentionRegressor

    model, model_options, est_options = CONFIGS[name]
    est_options = {**est_options, **extra}
    epochs = epochs * est_options.pop("epochs_factor", 1)
    moving = bool(est_options.get("augment"))
    train_ws = (data.wide.subset(np.flatnonzero(np.isin(data.wide.groups,
                                                        split.train_subjects)))
                if moving else data.exact.subset(split.train))
    est_options.setdefault("valid_fraction", 0.0)
    est = EEGAttentionRegressor(
        model=model, model_options=model_options or None, max_epochs=epochs,
        batch_size=batch, lr=1e-3, early_stopping=False, seed=seed, verbose=0, **est_options,
        **({"crop_n_times": 200, "crop_anchor": data.anchor} if moving else {}))
    start = time.perf_counter()
    est.fit(train_ws)
    seconds = time.perf_counter() - start
    result = est if return_estimator else est.predict(data.exact.subset(split.test))
    return result, seconds, epochs * len(train_ws) / seconds


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    if args.from_log:
        return from_logs(args, args.from_log)
    import numpy as np

    from eegattn.training.metrics import nrmse
    from eegattn.training.splits import subject_split

    data = load_data(args)
    exact, oracle_all = data.exact, data.oracle

    def fit_predict(name, seed, split, **extra):  # an ensemble: the estimator
        return fit_config(data, name, seed, split, epochs=args.epochs, batch=args.batch,
                          return_estimator=bool(extra), **extra)

    names = list(dict.fromkeys([BASELINE, *args.configs, *args.ensemble_of]))
    runs: dict[str, list[dict]] = {n: [] for n in names}
    ens_names = [f"{n} x{args.ensemble}" for n in args.ensemble_of] if args.ensemble else []
    fold_ensembles = args.fold_ensemble_of if args.ensemble > 1 else []
    ens_names += [f"{n} x{args.ensemble} folds{suffix}" for n in fold_ensembles
                  for suffix in ("", "+calibrated")]
    # members trained on fewer subjects (--valid-fraction) are another row: the name says so
    held_out = f" valid{args.valid_fraction:g}" if args.valid_fraction else ""
    mix_ensembles = args.mix_ensemble_of if args.ensemble > 1 else []
    bootstrap_ensembles = args.bootstrap_ensemble_of if args.ensemble > 1 else []
    seed_ensembles = args.seed_ensemble_of if args.ensemble > 1 else []
    joint_ensembles = args.joint_ensemble_of if args.ensemble > 1 else []
    one_fit = ([(b, f"{b} x{args.ensemble} {args.mix}{held_out}",
                 {"ensemble_mix": MIXES[args.mix]}) for b in mix_ensembles]
               + [(b, f"{b} x{args.ensemble} bootstrap{held_out}",
                   {"ensemble_split": "bootstrap"}) for b in bootstrap_ensembles]
               + [(b, f"{b} x{args.ensemble} seeds{held_out}", {"ensemble_split": "seeds"})
                  for b in seed_ensembles]
               + [(b, f"{b} x{args.ensemble} joint{d:g}{held_out}",
                   {"ensemble_split": "joint", "ensemble_diversity": d})
                  for b in joint_ensembles for d in args.diversity])
    ens_names += [name for _, name, _ in one_fit]
    for n in ens_names:
        runs[n] = []
    reference = {"mean predictor": [], "oracle": []}
    for seed in args.seeds:
        split = subject_split(exact.groups, valid_fraction=0.0, test_fraction=0.25, seed=seed)
        y_test, y_train = exact.y[split.test], exact.y[split.train]
        reference["mean predictor"].append(
            nrmse(y_test, np.full_like(y_test, float(np.mean(y_train)))))
        reference["oracle"].append(nrmse(y_test, oracle_all[split.test]))
        preds = {}
        for name in names:
            pred, seconds, wps = fit_predict(name, seed, split)
            preds[name] = pred
            runs[name].append({"seed": seed, "nrmse": nrmse(y_test, pred), "fit_s": seconds,
                               "train_windows_per_s": wps})
            print(f"split {seed}: {name:<26} NRMSE {runs[name][-1]['nrmse']:.4f} "
                  f"({seconds:.0f} s)", flush=True)
        for base in args.ensemble_of if args.ensemble else []:
            fits = [fit_predict(base, seed + 1000 * k, split) for k in range(1, args.ensemble)]
            members = [preds[base]] + [f[0] for f in fits]
            name = f"{base} x{args.ensemble}"
            member_scores = [nrmse(y_test, p) for p in members]
            runs[name].append({"seed": seed, "nrmse": nrmse(y_test, np.mean(members, 0)),
                               "best_member_nrmse": min(member_scores),
                               "mean_member_nrmse": float(np.mean(member_scores)),
                               "member_nrmse": member_scores,
                               **offsets(y_test, np.mean(members, 0), np.stack(members, 1)),
                               "fit_s": runs[base][-1]["fit_s"] + sum(f[1] for f in fits)})
            print(f"split {seed}: {name:<26} NRMSE {runs[name][-1]['nrmse']:.4f} "
                  f"(best member {min(member_scores):.4f})", flush=True)
        for base in fold_ensembles:
            # one fit gives both rows: the members' mean, and the mean calibrated on the
            # out-of-fold predictions (the estimator's combination)
            est, seconds, _ = fit_predict(base, seed, split, ensemble=args.ensemble,
                                          ensemble_split="folds",
                                          ensemble_combine="calibrate")
            test = exact.subset(split.test)
            members = est.predict_members(test)
            member_scores = [nrmse(y_test, p) for p in members.T]
            for suffix, pred in (("", members.mean(1)), ("+calibrated", est.predict(test))):
                name = f"{base} x{args.ensemble} folds{suffix}"
                runs[name].append({"seed": seed, "nrmse": nrmse(y_test, pred),
                                   "best_member_nrmse": min(member_scores),
                                   "mean_member_nrmse": float(np.mean(member_scores)),
                                   "member_nrmse": member_scores, "fit_s": seconds,
                                   **offsets(y_test, pred, members)})
                print(f"split {seed}: {name:<26} NRMSE {runs[name][-1]['nrmse']:.4f} "
                      f"(best member {min(member_scores):.4f})", flush=True)
            runs[f"{base} x{args.ensemble} folds+calibrated"][-1]["calibration"] = [
                float(est.model_.weights.sum()), float(est.model_.intercept)]
        # one fit each: members of several configurations (--mix), bagged members, seeds
        for base, name, extra in one_fit:
            est, seconds, _ = fit_predict(base, seed, split, ensemble=args.ensemble,
                                          valid_fraction=args.valid_fraction, **extra)
            members = est.predict_members(exact.subset(split.test))
            member_scores = [nrmse(y_test, p) for p in members.T]
            runs[name].append({"seed": seed, "nrmse": nrmse(y_test, members.mean(1)),
                               "best_member_nrmse": min(member_scores),
                               "mean_member_nrmse": float(np.mean(member_scores)),
                               "member_nrmse": member_scores, "fit_s": seconds,
                               "members": [m["model_options"] for m in est.ensemble_members_],
                               **offsets(y_test, members.mean(1), members),
                               **chosen_member(est, exact, member_scores)})
            print(f"split {seed}: {name:<26} NRMSE {runs[name][-1]['nrmse']:.4f} "
                  f"(best member {min(member_scores):.4f})", flush=True)
        if args.out:  # every finished split is kept, should the run be stopped
            partial = {"args": dict(vars(args), partial=True), "runs": runs,
                       "reference": reference}
            common.write_json(args.out, partial, indent=2)

    result = {"args": vars(args), "runs": runs, "reference": reference}
    return report(result, args.out)


def chosen_member(est, exact, member_scores) -> dict:
    """The member a user could choose without the test subjects: the best on the estimator's
    validation subjects (their exact windows), with its test NRMSE; {} without validation."""
    import numpy as np

    from eegattn.training.metrics import nrmse

    if not est.valid_subjects_:
        return {}
    valid = exact.subset(np.flatnonzero(np.isin(exact.groups, est.valid_subjects_)))
    scores = [nrmse(valid.y, p) for p in est.predict_members(valid).T]
    k = int(np.argmin(scores))
    return {"valid_subjects": list(est.valid_subjects_), "member_valid_nrmse": scores,
            "chosen_member": k, "chosen_member_nrmse": member_scores[k]}


def offsets(y, pred, members) -> dict:
    """How much of an ensemble's and its members' test error is one constant offset: the mean
    error, and NRMSE with each prediction's own mean error removed (members (n, K))."""
    import numpy as np

    from eegattn.training.metrics import nrmse

    def centred(p):
        return nrmse(y, p - np.mean(p - y))

    return {"offset": float(np.mean(pred - y)), "nrmse_centred": centred(pred),
            "member_offset": [float(np.mean(p - y)) for p in members.T],
            "member_nrmse_centred": [centred(p) for p in members.T]}


def summarise(runs: dict, reference: dict) -> tuple[dict, list]:
    """Per configuration: mean NRMSE, paired difference against the baseline with its standard
    error, wins, whether it beats ridge on every split, and an ensemble's best member."""
    import numpy as np

    base = {c["seed"]: c["nrmse"] for c in runs[BASELINE]}
    ridge = {c["seed"]: c["nrmse"] for c in runs["ridge"]} if "ridge" in runs else None
    rows, summary = [], {}
    for name, cells in runs.items():
        scores = np.array([c["nrmse"] for c in cells])
        seeds = [c["seed"] for c in cells]
        diff = scores - np.array([base[s] for s in seeds])
        se = _se(diff)
        fit = [c["fit_s"] for c in cells if "fit_s" in c]
        wps = [c["train_windows_per_s"] for c in cells if "train_windows_per_s" in c]
        entry = {"mean_nrmse": float(scores.mean()), "per_split": scores.tolist(),
                 "splits": seeds,
                 "diff_vs_baseline": float(diff.mean()), "diff_se": se,
                 "wins_vs_baseline": int((diff < 0).sum()),
                 "beats_ridge_every_split": _beats_every_split(name, cells, ridge)}
        if cells and "best_member_nrmse" in cells[0]:
            gain = np.array([c["best_member_nrmse"] for c in cells]) - scores
            entry.update(gain_over_best_member=float(gain.mean()),
                         gain_over_best_member_se=_se(gain),
                         beats_best_member=int((gain > 0).sum()))
        if cells and all("chosen_member_nrmse" in c for c in cells):  # chosen without test
            gain = np.array([c["chosen_member_nrmse"] for c in cells]) - scores
            entry.update(gain_over_chosen_member=float(gain.mean()),
                         gain_over_chosen_member_se=_se(gain),
                         beats_chosen_member=int((gain > 0).sum()))
        if cells and "mean_member_nrmse" in cells[0]:  # what averaging gained: diversity
            gain = np.array([c["mean_member_nrmse"] for c in cells]) - scores
            entry.update(gain_over_mean_member=float(gain.mean()),
                         gain_over_mean_member_se=_se(gain))
        summary[name] = entry
        per_split = dict(zip(seeds, scores, strict=True))
        rows.append([name if len(seeds) == len(base) else f"{name} ({len(seeds)} splits)",
                     f"{scores.mean():.4f}",
                     " / ".join(f"{per_split[s]:.3f}" if s in per_split else "-"
                                for s in base),
                     "-" if name == BASELINE else f"{diff.mean():+.4f} ({se:.4f})",
                     "-" if name == BASELINE else f"{(diff < 0).sum()}/{len(diff)}",
                     f"{np.mean(fit):.0f} s" if fit else "-",
                     f"{np.mean(wps):.0f}" if wps else "-"])
    for name, values in reference.items():
        rows.append([name, f"{np.mean(values):.4f}", " / ".join(f"{v:.3f}" for v in values),
                     "-", "-", "-", "-"])
    return summary, rows


def _se(values) -> float:
    """Standard error of the mean (nan for one value)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def _beats_every_split(name: str, cells: list[dict], ridge: dict | None) -> bool | None:
    """Whether a configuration beats ridge on every split both ran (None: no shared split)."""
    shared = [c for c in cells if ridge and c["seed"] in ridge]
    if name == "ridge" or not shared:
        return None
    return all(c["nrmse"] < ridge[c["seed"]] for c in shared)


def report(result: dict, out: str | None) -> int:
    summary, rows = summarise(result["runs"], result["reference"])
    result["summary"] = summary
    args = result["args"]
    print(f"\nChallenge 1, splits {args['seeds']}, {args['epochs']} epochs, batch "
          f"{args['batch']}\n")
    print(common.markdown_table(
        ["configuration", "mean NRMSE", "per split", f"paired diff vs {BASELINE} (SE)",
         "wins", "fit", "train windows/s"], rows))
    ensembles = {k: v for k, v in summary.items() if "gain_over_best_member" in v}
    for name, entry in ensembles.items():
        print(f"{name}: {entry['gain_over_best_member']:+.4f} "
              f"({entry['gain_over_best_member_se']:.4f}) better than its best member, on "
              f"{entry['beats_best_member']}/{len(entry['per_split'])} splits"
              + (f"; {entry['gain_over_mean_member']:+.4f} "
                 f"({entry['gain_over_mean_member_se']:.4f}) better than its mean member"
                 if "gain_over_mean_member" in entry else "")
              + (f"; {entry['gain_over_chosen_member']:+.4f} "
                 f"({entry['gain_over_chosen_member_se']:.4f}) better than the member best on "
                 f"the validation subjects, on {entry['beats_chosen_member']}/"
                 f"{len(entry['per_split'])} splits"
                 if "gain_over_chosen_member" in entry else ""))
    if out:
        common.write_json(out, result, indent=2)
        print(f"\nwrote {out}")
    return 0


_LINE = re.compile(r"split (\d+): (.+?)\s+NRMSE ([0-9.]+) \((?:(\d+) s|best member ([0-9.]+))\)")


def from_logs(args, logs: list[str]) -> int:
    """Results of runs stopped before they wrote their JSON, from the lines they printed: the
    splits on which every configuration of the first complete split finished."""
    import numpy as np

    cells: dict[int, dict[str, dict]] = {}
    for log in logs:
        for line in Path(log).read_text().splitlines():
            m = _LINE.match(line)
            if m:
                split, name = int(m[1]), m[2].strip()
                cell = {"seed": split, "nrmse": float(m[3])}
                if m[4]:
                    cell["fit_s"] = float(m[4])
                else:
                    cell["best_member_nrmse"] = float(m[5])
                cells.setdefault(split, {})[name] = cell
    if not cells:
        raise SystemExit(f"no result lines in {', '.join(logs)}")
    names = max((list(c) for c in cells.values()), key=len)
    complete = sorted(s for s, c in cells.items() if set(c) >= set(names))
    if not complete:
        raise SystemExit("no split has every configuration")
    from eegattn.data.cache import load_challenge_windows
    from eegattn.data.synthetic import oracle_predict
    from eegattn.training.metrics import nrmse
    from eegattn.training.pipeline import prepare_synthetic
    from eegattn.training.splits import subject_split

    root = prepare_synthetic(["R5"], cache_dir=args.cache, n_subjects=args.n_subjects)
    exact = load_challenge_windows(1, root=root, cache_dir=Path(args.cache) / "windows",
                                   progress=False)
    oracle_all = oracle_predict(Path(root) / "EEG2025r5", 1, X=np.asarray(exact.X),
                                sfreq=exact.sfreq)
    reference = {"mean predictor": [], "oracle": []}
    runs = {name: [] for name in names}
    for seed in complete:
        split = subject_split(exact.groups, valid_fraction=0.0, test_fraction=0.25, seed=seed)
        y_test, y_train = exact.y[split.test], exact.y[split.train]
        reference["mean predictor"].append(
            nrmse(y_test, np.full_like(y_test, float(np.mean(y_train)))))
        reference["oracle"].append(nrmse(y_test, oracle_all[split.test]))
        for name in names:
            runs[name].append(cells[seed][name])
    dropped = sorted(set(cells) - set(complete))
    result = {"args": dict(vars(args), seeds=complete, from_log=logs, incomplete_splits=dropped),
              "runs": runs, "reference": reference}
    return report(result, args.out)


def merge(paths: list[str], out: str | None) -> int:
    """One result from several runs: other splits (e.g. two processes, half the splits each),
    other configurations on the same splits, or both. Cells are matched by split; where two
    files ran the same configuration on a split (the baseline, run by every file), the first
    file's cell is kept. A configuration may lack some splits: its paired figures then use
    the splits it has, and the table says how many."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    seeds, cells, reference = [], {}, {}
    for part in parts:
        done = [c["seed"] for c in part["runs"][BASELINE]]  # a partial file's finished splits
        seeds.extend(s for s in done if s not in seeds)
        for name, values in part["reference"].items():
            for seed, value in zip(done, values, strict=True):
                reference.setdefault(name, {}).setdefault(seed, value)
        for name, part_cells in part["runs"].items():
            for cell in part_cells:
                cells.setdefault(name, {}).setdefault(cell["seed"], cell)
    # a merged file's own sources stand in for it, so the list names every run's file
    sources = [q for p, part in zip(paths, parts, strict=True)
               for q in part["args"].get("merged_from") or [p]]
    merged = {"args": dict(parts[0]["args"], seeds=seeds, merged_from=sources, partial=False),
              "runs": {name: [by_seed[s] for s in seeds if s in by_seed]
                       for name, by_seed in cells.items()},
              "reference": {name: [by_seed[s] for s in seeds]
                            for name, by_seed in reference.items()}}
    return report(merged, out)


if __name__ == "__main__":
    sys.exit(main())
