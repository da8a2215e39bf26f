"""What benchmarks write to docs/results: paths that name no machine, and bench/challenge1.py's
merge of runs over other splits and other configurations (no training)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would (dataclasses look the module up)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_dir():
    sys.path.insert(0, str(BENCH))
    try:
        yield
    finally:
        sys.path.remove(str(BENCH))


def test_results_name_no_machine(bench_dir):
    common = _load("_common")
    inside = str(common.REPO_ROOT / "cache" / "EEG2025r5")
    result = common.portable({"root": inside, "out": "/tmp/scratch/a.json",
                              "merged_from": ["/tmp/x/b.json"], "note": "0.7 / 0.8",
                              "seeds": [1, 2], "nested": {"cache": "/var/tmp/c"}})
    assert result == {"root": "cache/EEG2025r5", "out": "a.json", "merged_from": ["b.json"],
                      "note": "0.7 / 0.8", "seeds": [1, 2], "nested": {"cache": "c"}}


def _run(seeds, configs, offset=0.0):
    """A result file as bench/challenge1.py writes it: config -> one cell per split."""
    runs = {name: [{"seed": s, "nrmse": 0.7 + 0.01 * s + k * 0.05 + offset, "fit_s": 1.0,
                    "train_windows_per_s": 100.0} for s in seeds]
            for k, name in enumerate(configs)}
    reference = {"mean predictor": [1.0 + 0.001 * s for s in seeds],
                 "oracle": [0.6 + 0.001 * s for s in seeds]}
    return {"args": {"seeds": seeds, "epochs": 10, "batch": 32}, "runs": runs,
            "reference": reference}


def test_merge_matches_cells_by_split(bench_dir, tmp_path, capsys):
    challenge1 = _load("challenge1")
    a = tmp_path / "a.json"  # splits 20, 21: the baseline and ridge
    b = tmp_path / "b.json"  # split 21 only: the baseline (run again) and a new configuration
    a.write_text(json.dumps(_run([20, 21], ["fast", "ridge"])))
    b.write_text(json.dumps(_run([21], ["fast", "eegnex"], offset=0.5)))
    out = tmp_path / "merged.json"
    assert challenge1.merge([str(a), str(b)], str(out)) == 0
    merged = json.loads(out.read_text())
    assert merged["args"]["seeds"] == [20, 21]
    # the first file's baseline is kept where both ran it
    assert [c["nrmse"] for c in merged["runs"]["fast"]] == pytest.approx([0.9, 0.91])
    eegnex = merged["summary"]["eegnex"]
    assert eegnex["splits"] == [21]  # paired against the baseline on its own split only
    assert eegnex["diff_vs_baseline"] == pytest.approx(0.5 + 0.05)
    assert eegnex["beats_ridge_every_split"] is False
    assert merged["reference"]["oracle"] == pytest.approx([0.62, 0.621])
    assert "eegnex (1 splits)" in capsys.readouterr().out
    assert merged["args"]["merged_from"] == ["a.json", "b.json"]
    # merging into a merged file keeps the names of every run's file
    c = tmp_path / "c.json"
    c.write_text(json.dumps(_run([22], ["fast"])))
    assert challenge1.merge([str(out), str(c)], str(out)) == 0
    assert json.loads(out.read_text())["args"]["merged_from"] == ["a.json", "b.json", "c.json"]


def test_ensemble_members_scores_a_set_against_its_best_and_mean_member(bench_dir):
    import numpy as np

    members = _load("ensemble_members")
    y = np.array([0.6, 0.9, 1.2, 1.5, 1.8])
    latencies = np.array([0.6, 0.9, 1.2, 1.5, 1.8])
    # member 0 puts its mass on the first two latencies, member 1 on the first and third:
    # their normalised product keeps only the first (0.6 s), their mean would give 0.75 s
    first_two = np.log(np.array([0.5, 0.5, 1e-12, 1e-12, 1e-12]))
    first_third = np.log(np.array([0.5, 1e-12, 0.5, 1e-12, 1e-12]))
    store = {"y": y, "latencies": latencies,
             "pred:a|0": y + 0.1, "pred:a|1": y - 0.1, "pred:b|0": y + 0.3,
             "logp:a|0": np.tile(first_two, (5, 1)), "logp:a|1": np.tile(first_third, (5, 1))}
    two = members.score({20: store}, ["a", "a"])  # opposite errors: the mean is exact
    (cell,) = two["splits"]
    assert cell["nrmse"] == pytest.approx(0.0, abs=1e-12)
    assert cell["best_member_nrmse"] == pytest.approx(0.1 / y.std())
    assert two["gain_over_best_member"] > 0 and two["beats_best_member"] == 1
    product = np.sqrt(np.mean((y - 0.6) ** 2)) / y.std()
    assert two["log_prob_mean_nrmse"] == pytest.approx(product, rel=1e-4)
    mixed = members.score({20: store, 21: store}, ["a", "b"])  # b has no time head
    assert mixed["mean_nrmse"] == pytest.approx(0.2 / y.std())
    assert mixed["mean_member_nrmse"] == pytest.approx(0.2 / y.std())
    assert mixed["gain_over_best_member"] == pytest.approx(-0.1 / y.std())
    assert mixed["beats_best_member"] == 0 and "log_prob_mean_nrmse" not in mixed


def test_ensemble_members_averages_log_probabilities_only_on_one_grid(bench_dir):
    import numpy as np

    members = _load("ensemble_members")
    y = np.array([0.6, 0.9, 1.2, 1.5])
    flat = np.log(np.full((4, 4), 0.25))
    store = {"y": y, "pred:a|0": y + 0.1, "pred:a|1": y + np.array([0.1, 0.3, 0.1, 0.3]),
             "pred:fine|0": y, "logp:a|0": flat, "logp:a|1": flat,
             "logp:fine|0": np.log(np.full((4, 8), 0.125)),
             "lat:a|0": np.array([0.6, 1.0, 1.4, 1.8]), "lat:a|1": np.array([0.6, 1.0, 1.4, 1.8]),
             "lat:fine|0": np.linspace(0.6, 1.8, 8)}
    same = members.score({20: store}, ["a", "a"])
    assert same["log_prob_mean_nrmse"] == pytest.approx(
        np.sqrt(np.mean((y - 1.2) ** 2)) / y.std())  # flat over the bins: their mean, 1.2 s
    # a member of 50 tokens has twice the bins: no product of distributions, no crash
    assert "log_prob_mean_nrmse" not in members.score({20: store}, ["a", "fine"])
    # members off by a constant correlate perfectly, one with its own error less
    assert members.score({20: store}, ["a", "fine"])["member_correlation"] == pytest.approx(1.0)
    assert 0.5 < members.score({20: store}, ["a", "a"])["member_correlation"] < 0.99
    store["pred:fine|0"] = y[::-1]
    assert members.score({20: store}, ["a", "fine"])["member_correlation"] == pytest.approx(-1.0)


def test_chosen_member_is_picked_on_the_validation_subjects_not_the_test_split(bench_dir):
    import numpy as np

    challenge1 = _load("challenge1")

    class Windows:  # what chosen_member reads of a WindowSet
        def __init__(self, y, groups):
            self.y, self.groups = y, groups

        def subset(self, idx):
            return Windows(self.y[idx], self.groups[idx])

    class Fitted:  # two members: exact on the validation subjects, and 0.2 s late
        valid_subjects_ = ["v1", "v2"]

        def predict_members(self, windows):
            assert set(windows.groups) <= {"v1", "v2"}  # never the test subject's windows
            return np.stack([windows.y, windows.y + 0.2], 1)

    y = np.array([0.6, 1.0, 1.4, 1.8, 0.8, 1.6])
    windows = Windows(y, np.array(["v1", "v1", "v2", "v2", "test", "test"]))
    # member 1 is the better one on the test split: the choice must not see it
    cell = challenge1.chosen_member(Fitted(), windows, member_scores=[0.9, 0.3])
    assert cell["chosen_member"] == 0 and cell["chosen_member_nrmse"] == 0.9
    assert cell["member_valid_nrmse"] == pytest.approx([0.0, 0.2 / y[:4].std()])
    assert cell["valid_subjects"] == ["v1", "v2"]
    Fitted.valid_subjects_ = None  # trained on every subject: no member can be chosen
    assert challenge1.chosen_member(Fitted(), windows, member_scores=[0.9, 0.3]) == {}
    # the summary: the ensemble against the chosen member, with its standard error and wins
    result = _run([20, 21, 22], ["fast", "ens"])
    for cell, chosen in zip(result["runs"]["ens"], (0.02, -0.01, 0.03), strict=True):
        cell["chosen_member_nrmse"] = cell["nrmse"] + chosen
    summary, _ = challenge1.summarise(result["runs"], result["reference"])
    assert summary["ens"]["gain_over_chosen_member"] == pytest.approx(0.04 / 3)
    assert summary["ens"]["gain_over_chosen_member_se"] == pytest.approx(
        np.std([0.02, -0.01, 0.03], ddof=1) / np.sqrt(3))
    assert summary["ens"]["beats_chosen_member"] == 2
    assert "gain_over_chosen_member" not in summary["fast"]


@pytest.mark.parametrize("argv, message", [
    (["--valid-fraction", "0.25"], "name one of them"),
    (["--seed-ensemble-of", "fast", "--ensemble", "5", "--valid-fraction", "1"], "[0, 1)"),
    (["--seed-ensemble-of", "fast"], "give --ensemble 2 or more"),
])
def test_challenge1_refuses_bad_ensemble_options(bench_dir, capsys, argv, message):
    challenge1 = _load("challenge1")
    with pytest.raises(SystemExit):
        challenge1.parse_args(argv)
    assert message in capsys.readouterr().err
