"""Which members make a challenge-1 ensemble beat its best member: a pool of trained members
per split, ensembles drawn from it, each against its best and its mean member.

Five seeds of one configuration disagree too little for their mean to beat the best of them
(docs/benchmarks.md, "Why the ensembles of time heads do not beat their best member"). This
benchmark trains a pool of members of several configurations of ``bench/challenge1.py`` (its
protocol: the default synthetic release, seeded subject splits, 10 epochs, no early stopping;
member k of a configuration has seed ``split + 1000 k`` plus the configuration's own offset,
``seed_offset``), keeps their test predictions
(``--predictions``: a run that stopped continues where it was), and scores:

- the named sets (``--sets NAME=CONFIG,CONFIG,...``; a configuration named n times takes its
  first n members): the ensemble's NRMSE (the members' mean), its best and mean member's, and
  the gap to the best member (positive: the ensemble is better), per split and on average;
- every multiset of ``--size`` pool configurations, ranked by mean ensemble NRMSE;
- for sets of time heads, also the mean of the members' log-probabilities over the time bins
  (their normalised product) instead of the mean of their expectations.

``--study`` names a pool and its sets (``STUDIES``): ``time_heads`` (heads, kernels and
augmentations; on splits 10-11 it chose ``MIXES["time_heads"]`` of bench/challenge1.py, then
measured on fresh splits with ``bench/challenge1.py --mix-ensemble-of``) or
``architectures`` (the default with one architecture option changed). Run it on the splits
that choose:

    .venv/bin/python bench/ensemble_members.py --seeds 10 11 --threads 1 \\
        --out docs/results/challenge1-choose-10-11-members.json
    .venv/bin/python bench/ensemble_members.py --study architectures --seeds 10 11 \\
        --threads 1 --out docs/results/challenge1-choose-10-11-architectures.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import _common as common  # noqa: E402
from challenge1 import ARCHITECTURES, CONFIGS, MIXES, fit_config, load_data  # noqa: E402

DEFAULT = "fast+distribution-k15+shift+scale+drop"
#: studies: a pool of configurations (CONFIG:COUNT) and the named sets scored from it
STUDIES = {
    # both time heads at kernels 9, 15 and 25, regression heads, time_shift alone (it chose
    # MIXES["time_heads"] of bench/challenge1.py)
    "time_heads": {
        "pool": [f"{DEFAULT}:5", "fast+distribution-k9+shift+scale+drop:2",
                 "fast+distribution-k25+shift+scale+drop:2",
                 "fast+softargmax-k15+shift+scale+drop:2",
                 "fast+softargmax-k9+shift+scale+drop:1",
                 "fast+softargmax-k25+shift+scale+drop:1", "fast+shift+scale+drop:2",
                 "fast+distribution-k15+shift:2", "fast+softargmax-k15+shift:2"],
        "sets": [f"seeds={','.join([DEFAULT] * 5)}",
                 "time_heads=" + ",".join(f"fast+{m['head']}-k{m['head_options']['kernel']}"
                                          "+shift+scale+drop" for m in MIXES["time_heads"])],
    },
    # the default with one architecture option changed (ARCHITECTURES of bench/challenge1.py)
    "architectures": {
        "pool": [f"{DEFAULT}:5", *(f"default@{name}:1" for name in ARCHITECTURES)],
        "sets": [f"seeds={','.join([DEFAULT] * 5)}",
                 f"architectures={DEFAULT},default@standard-attention,default@gelu,"
                 "default@two-blocks,default@tokens-50"],
    },
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11])
    parser.add_argument("--study", choices=list(STUDIES), default="time_heads",
                        help="the pool and named sets (STUDIES) unless --pool / --sets")
    parser.add_argument("--pool", nargs="+", default=None, metavar="CONFIG:COUNT")
    parser.add_argument("--sets", nargs="+", default=None, metavar="NAME=CONFIG,...")
    parser.add_argument("--size", type=int, default=5, help="members of the ranked ensembles")
    parser.add_argument("--top", type=int, default=15, help="ranked ensembles reported")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--context", type=float, default=0.2)
    parser.add_argument("--n-subjects", type=int, default=24)
    parser.add_argument("--cache", default=str(REPO / "cache"))
    parser.add_argument("--predictions", default=str(REPO / "cache" / "ensemble-members"),
                        help="folder of the members' test predictions (one .npz per split)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    study = STUDIES[args.study]
    args.pool = [_pool_entry(parser, entry) for entry in args.pool or study["pool"]]
    args.sets = [_set_entry(parser, entry, dict(args.pool))
                 for entry in args.sets or study["sets"]]
    offsets = [seed_offset(config) for config, _ in args.pool]
    if len(set(offsets)) < len(offsets):
        parser.error("two --pool configurations would share seeds (seed_offset); rename one "
                     "or leave one out")
    return args


def _pool_entry(parser, entry: str) -> tuple[str, int]:
    name, _, count = entry.rpartition(":")
    if name not in CONFIGS or not count.isdigit() or int(count) < 1:
        parser.error(f"--pool {entry!r}: give CONFIG:COUNT with a configuration of "
                     "bench/challenge1.py and a count >= 1")
    return name, int(count)


def _set_entry(parser, entry: str, pool: dict) -> tuple[str, list[str]]:
    name, _, members = entry.partition("=")
    members = members.split(",")
    for config in set(members):
        if members.count(config) > pool.get(config, 0):
            parser.error(f"--sets {name}: {members.count(config)} member(s) of {config!r}, "
                         f"but --pool trains {pool.get(config, 0)}")
    return name, members


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np

    from eegattn.models.heads import TimeHead
    from eegattn.training.metrics import nrmse
    from eegattn.training.splits import subject_split

    data = load_data(args)
    # what the stored predictions depend on besides the configuration and seed
    protocol = {"epochs": args.epochs, "batch": args.batch, "context": args.context,
                "n_subjects": args.n_subjects}
    folder = Path(args.predictions)
    folder.mkdir(parents=True, exist_ok=True)
    splits = {}
    for seed in args.seeds:
        split = subject_split(data.exact.groups, valid_fraction=0.0, test_fraction=0.25,
                              seed=seed)
        test = data.exact.subset(split.test)
        path = folder / f"split-{seed}.npz"
        store = _load_npz(path, protocol)
        for config, count in args.pool:
            for k in range(count):
                key = f"{config}|{k}"
                member_seed = seed + 1000 * k + seed_offset(config)
                if f"pred:{key}" in store and int(store.get(f"seed:{key}", -1)) == member_seed:
                    continue  # trained already (files without seeds train again)
                est, seconds, _ = fit_config(data, config, member_seed, split,
                                             epochs=args.epochs, batch=args.batch,
                                             return_estimator=True)  # to read its head
                store[f"pred:{key}"] = est.predict(test)
                store[f"seed:{key}"] = np.array(member_seed)
                store[f"seconds:{key}"] = np.array(seconds)
                heads = [m for m in est.model_.modules() if isinstance(m, TimeHead)]
                if heads:
                    store[f"logp:{key}"] = _log_probabilities(est.model_, heads[0], test.X)
                    store[f"lat:{key}"] = heads[0].latencies().numpy()
                store["y"] = np.asarray(test.y)
                store["protocol"] = np.array(json.dumps(protocol, sort_keys=True))
                _save_npz(path, store)
                print(f"split {seed}: {key:<48} NRMSE "
                      f"{nrmse(test.y, store[f'pred:{key}']):.4f} ({seconds:.0f} s)",
                      flush=True)
        splits[seed] = store

    # every member alone: its seed, test NRMSE and fit seconds per split
    alone = {f"{config}|{k}": [
        {"seed": seed, "member_seed": int(store[f"seed:{config}|{k}"]),
         "nrmse": nrmse(store["y"], store[f"pred:{config}|{k}"]),
         "fit_s": float(store[f"seconds:{config}|{k}"])} for seed, store in splits.items()]
        for config, count in args.pool for k in range(count)}
    named = {name: score(splits, members) for name, members in args.sets}
    counts = dict(args.pool)
    ranked = []
    for combo in itertools.combinations_with_replacement(sorted(counts), args.size):
        if all(combo.count(c) <= counts[c] for c in set(combo)):
            entry = score(splits, list(combo))
            ranked.append({k: entry[k] for k in ("members", "mean_nrmse",
                                                 "gain_over_best_member",
                                                 "beats_best_member")})
    ranked.sort(key=lambda e: e["mean_nrmse"])
    result = {"args": vars(args), "members": alone, "sets": named,
              "ranked": ranked[:args.top], "n_ranked": len(ranked)}
    rows = [[name, f"{e['mean_nrmse']:.4f}", f"{e['mean_best_member_nrmse']:.4f}",
             f"{e['mean_member_nrmse']:.4f}", f"{e['gain_over_best_member']:+.4f}",
             f"{e['beats_best_member']}/{len(args.seeds)}",
             f"{e['member_correlation']:.3f}",
             f"{e['log_prob_mean_nrmse']:.4f}" if "log_prob_mean_nrmse" in e else "-"]
            for name, e in named.items()]
    print(common.markdown_table(["set", "ensemble", "best member", "mean member",
                                 "gain over best", "beats best", "member r",
                                 "log-prob mean"], rows))
    print(f"\nbest {min(args.top, len(ranked))} of {len(ranked)} ensembles of {args.size} "
          "from the pool:")
    for e in ranked[:args.top]:
        print(f"  {e['mean_nrmse']:.4f}  gain {e['gain_over_best_member']:+.4f} "
              f"({e['beats_best_member']}/{len(args.seeds)})  {', '.join(e['members'])}")
    if args.out:
        common.write_json(args.out, result, indent=2)
    return 0


def seed_offset(config: str) -> int:
    """What a configuration adds to its members' seeds: 0 for the default (its members are
    bench/challenge1.py's single model and ensemble), 1-999 from the name for the others, so
    no two configurations share batches, crops and augmentation draws."""
    return 0 if config == DEFAULT else 1 + zlib.crc32(config.encode()) % 999


def score(splits: dict, members: list[str]) -> dict:
    """The ensemble of ``members`` (configuration names; a name given n times takes that
    configuration's first n members) on each split of ``splits`` (seed -> the arrays of a
    predictions file: ``y``, ``pred:<config>|<k>``, time heads' ``logp:<config>|<k>`` and
    ``lat:<config>|<k>``), and its averages over the splits."""
    import numpy as np

    from eegattn.training.metrics import nrmse

    cells = []
    for seed, store in splits.items():
        seen: dict[str, int] = {}
        keys = []
        for config in members:
            keys.append(f"{config}|{seen.get(config, 0)}")
            seen[config] = seen.get(config, 0) + 1
        preds = np.stack([store[f"pred:{k}"] for k in keys], 1)  # (n, K)
        y = store["y"]
        scores = [nrmse(y, p) for p in preds.T]
        # how alike the members are: their mean pairwise correlation on the test windows
        corr = np.corrcoef(preds.T)[np.triu_indices(len(keys), 1)]
        cell = {"seed": seed, "nrmse": nrmse(y, preds.mean(1)),
                "best_member_nrmse": min(scores),
                "mean_member_nrmse": float(np.mean(scores)), "member_nrmse": scores,
                "member_correlation": float(np.mean(corr)) if corr.size else 1.0}
        # log-probabilities average only over one grid of time bins (the same token count)
        grids = [_latencies(store, k) for k in keys]
        if all(f"logp:{k}" in store for k in keys) and all(
                g is not None and np.array_equal(g, grids[0]) for g in grids):
            log_p = np.mean([store[f"logp:{k}"] for k in keys], 0)
            p = np.exp(log_p - log_p.max(1, keepdims=True))
            cell["log_prob_mean_nrmse"] = nrmse(y, (p / p.sum(1, keepdims=True)) @ grids[0])
        cells.append(cell)
    gaps = [c["best_member_nrmse"] - c["nrmse"] for c in cells]
    return {"members": members, "splits": cells,
            "mean_nrmse": float(np.mean([c["nrmse"] for c in cells])),
            "mean_best_member_nrmse": float(np.mean([c["best_member_nrmse"]
                                                     for c in cells])),
            "mean_member_nrmse": float(np.mean([c["mean_member_nrmse"] for c in cells])),
            "gain_over_best_member": float(np.mean(gaps)),
            "beats_best_member": int(sum(g > 0 for g in gaps)),
            "member_correlation": float(np.mean([c["member_correlation"] for c in cells])),
            **({"log_prob_mean_nrmse": float(np.mean([c["log_prob_mean_nrmse"]
                                                       for c in cells]))}
               if all("log_prob_mean_nrmse" in c for c in cells) else {})}


def _latencies(store: dict, key: str):
    """The time bins (s) of member ``key``'s head; files of the first version kept one grid
    for all members (``latencies``)."""
    return store.get(f"lat:{key}", store.get("latencies"))


def _log_probabilities(model, head, X):
    """(n, bins) log-probabilities of a time head over its bins, for windows X: the head in
    training mode returns them after its expectation (the rest of the model stays in eval)."""
    import numpy as np
    import torch

    model.eval()
    was_distribution, head.distribution = head.distribution, True
    head.train()
    try:
        with torch.inference_mode():
            out = model(torch.as_tensor(np.asarray(X), dtype=torch.float32))
    finally:
        head.distribution = was_distribution
        head.eval()
    return out[:, 1:].numpy()


def _load_npz(path: Path, protocol: dict) -> dict:
    """The predictions stored for one split (empty if none), refused when they were made with
    other training settings."""
    import numpy as np

    if not path.exists():
        return {}
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    found = json.loads(str(arrays.get("protocol", "{}")))
    if found != json.loads(json.dumps(protocol, sort_keys=True)):
        raise SystemExit(f"{path} holds predictions made with {found or 'unknown settings'}, "
                         f"not {protocol}; give another --predictions folder")
    return arrays


def _save_npz(path: Path, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` atomically (a stopped run keeps the last complete file)."""
    import numpy as np

    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
