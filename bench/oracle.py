"""Oracle NRMSE on a synthetic release: the best score its planted truth allows.

    .venv/bin/python bench/oracle.py [--subjects 24] [--seed 0] [--cache-dir DIR]

Challenge 1: the planted wave's latency measured in the EEG windows (the best achievable from
the data) and the planted latency itself (a floor no model can reach). Challenge 2: E[target |
planted feature] per window. All windows of the release, exclusions applied as in training.
"""

import argparse

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)

    from eegattn.data.cache import load_challenge_windows
    from eegattn.data.synthetic import default_cache_dir, make_release, oracle_predict
    from eegattn.training.metrics import nrmse

    root = args.cache_dir or default_cache_dir()
    release = make_release(root, n_subjects=args.subjects, seed=args.seed)
    rows = []
    c1 = load_challenge_windows(1, root=root, progress=False)
    from_eeg = oracle_predict(release, 1, X=np.asarray(c1.X), sfreq=c1.sfreq)
    floor = oracle_predict(release, 1, metadata=c1.metadata)
    rows.append(("1", "oracle from the EEG windows", len(c1), nrmse(c1.y, from_eeg)))
    rows.append(("1", "planted latency, no EEG noise (floor)", len(c1), nrmse(c1.y, floor)))
    c2 = load_challenge_windows(2, root=root, progress=False)
    rows.append(("2", "E[externalizing | planted feature]", len(c2),
                 nrmse(c2.y, oracle_predict(release, 2, metadata=c2.metadata))))
    print(f"synthetic release {release} ({args.subjects} subjects, seed {args.seed})\n")
    print("| challenge | oracle | windows | NRMSE |\n|---|---|---|---|")
    for challenge, name, n, score in rows:
        print(f"| {challenge} | {name} | {n} | {score:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
