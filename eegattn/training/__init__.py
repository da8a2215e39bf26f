"""Training: the estimator, the challenge metric, subject-wise splits, checkpoints, run folders
and distributed training.

Names load lazily so that ``import eegattn.training`` stays light (torch is imported only when
a name that needs it is used).
"""

from eegattn._lazy import lazy_exports

_LAZY = {
    "EEGAttentionRegressor": "eegattn.training.estimator",
    "nrmse": "eegattn.training.metrics",
    "overall_score": "eegattn.training.metrics",
    "nrmse_scorer": "eegattn.training.metrics",
    "mean_predictor_nrmse": "eegattn.training.metrics",
    "SubjectSplit": "eegattn.training.splits",
    "subject_split": "eegattn.training.splits",
    "train_valid_split": "eegattn.training.splits",
    "apply_subject_split": "eegattn.training.splits",
    "subject_kfold": "eegattn.training.splits",
    "check_disjoint_subjects": "eegattn.training.splits",
    "create_run_dir": "eegattn.training.runs",
    "save_run": "eegattn.training.runs",
    "load_run": "eegattn.training.runs",
    "TrainingLoop": "eegattn.training.loop",
    "init_distributed": "eegattn.training.distributed",
    "run_challenge": "eegattn.training.pipeline",
    "resume_challenge": "eegattn.training.pipeline",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports('eegattn.training', _LAZY, globals())
