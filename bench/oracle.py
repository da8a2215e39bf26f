"""Oracle NRMSE on a synthetic release: the best score its planted truth allows.

    .venv/bin/python bench/oracle.py [--subjects 24] [--seed 0] [--cache-dir DIR] [--out JSON]

Challenge 1: the response time read back from the EEG windows under the planted model (the
stimulus-locked wave and every press's readiness potential and positivity; the best achievable
from the data), and the stimulus-locked wave's planted latency alone, without EEG noise (what
that one component could give; the press waves carry more). Challenge 2: E[target |
planted feature] per window. All windows of the release, exclusions applied as in training.
"""

import argparse

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
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
    rows.append(("1", "planted stimulus-wave latency alone, no EEG noise", len(c1),
                 nrmse(c1.y, floor)))
    c2 = load_challenge_windows(2, root=root, progress=False)
    rows.append(("2", "E[externalizing | planted feature]", len(c2),
                 nrmse(c2.y, oracle_predict(release, 2, metadata=c2.metadata))))
    print(f"synthetic release {release} ({args.subjects} subjects, seed {args.seed})\n")
    print("| challenge | oracle | windows | NRMSE |\n|---|---|---|---|")
    for challenge, name, n, score in rows:
        print(f"| {challenge} | {name} | {n} | {score:.3f} |")
    if args.out:
        import subprocess
        import sys
        from datetime import date
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import _common

        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        record = {
            "what": "oracle NRMSE of the default synthetic release (the best score its planted "
                    "truth allows)",
            "command": "python " + " ".join(["bench/oracle.py", *(argv or sys.argv[1:])]),
            "release": f"synthetic EEG2025r5, {args.subjects} subjects, seed {args.seed}",
            "recorded": date.today().isoformat(), "commit": commit,
            "rows": [{"challenge": int(c), "oracle": name, "windows": n,
                      "nrmse": round(float(score), 4)} for c, name, n, score in rows],
        }
        _common.write_json(args.out, record)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
