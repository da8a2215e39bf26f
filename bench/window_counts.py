"""Window counts of a synthetic release under each selection: training and scoring, both
CCD trial rules, CCD only and every task.

    .venv/bin/python bench/window_counts.py [--subjects 24] [--seed 0] [--cache-dir DIR]
                                            [--json docs/results/window-counts.json]

Training keeps the starter kit's selection (the nine excluded subjects left out, 129 HBN
channels); the scoring ingestion keeps every subject (``eegattn.data.scoring``). Challenge 1
under the challenge's trial rule (a run's last trial dropped, as the competition's eegdash
did) and eegdash 0.9's (it ends at end_experiment); challenge 2 on the CCD runs and on every
task of the release. Prints a markdown table; ``--json`` also writes it (atomically).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None,
                        help="release and window cache folder (default: the project cache)")
    parser.add_argument("--json", default=None, help="also write the counts to this file")
    args = parser.parse_args(argv)

    from eegattn.challenge import ALL_TASKS
    from eegattn.data.cache import load_challenge_windows
    from eegattn.data.scoring import scoring_windows
    from eegattn.data.synthetic import default_cache_dir, make_release

    root = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    release = make_release(root, n_subjects=args.subjects, seed=args.seed)
    cache = root / "windows"
    rows = []

    def count(label, challenge, windows, selection):
        rows.append({"challenge": challenge, "selection": selection, "what": label,
                     "windows": len(windows), "subjects": int(windows.metadata["subject"]
                                                              .nunique()),
                     "recordings": int(windows.metadata["recording"].nunique())})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped recordings are counted, not shown
        for rule in ("challenge", "current"):
            count(f"trial rule {rule}", 1, load_challenge_windows(
                1, root=root, cache_dir=cache, trial_rule=rule, progress=False), "training")
            count(f"trial rule {rule}", 1,
                  scoring_windows(1, release, trial_rule=rule, cache_dir=cache), "scoring")
        count("CCD", 2, load_challenge_windows(2, root=root, cache_dir=cache, progress=False),
              "training")
        count("every task of the release", 2, load_challenge_windows(
            2, root=root, cache_dir=cache, tasks=ALL_TASKS, progress=False), "training")
        count("CCD", 2, scoring_windows(2, release, cache_dir=cache), "scoring")

    print(f"synthetic release {release} ({args.subjects} subjects, seed {args.seed})\n")
    print("| challenge | selection | windows of | windows | subjects | recordings |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['challenge']} | {r['selection']} | {r['what']} | {r['windows']:,} | "
              f"{r['subjects']} | {r['recordings']} |")
    if args.json:
        from eegattn.utils.io import write_json_atomic

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.json, {"release": release.name, "subjects": args.subjects,
                                      "seed": args.seed, "rows": rows}, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
