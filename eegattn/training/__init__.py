"""Training: the estimator, the challenge metric, subject-wise splits, checkpoints, run folders
and distributed training.

Names load lazily so that ``import eegattn.training`` stays light (torch is imported only when
a name that needs it is used).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "estimator": ["EEGAttentionRegressor", "SubjectLeakageWarning"],
        "metrics": ["nrmse", "overall_score", "nrmse_scorer", "mean_predictor_nrmse"],
        "splits": [
            "SubjectSplit",
            "subject_split",
            "train_valid_split",
            "apply_subject_split",
            "subject_kfold",
            "check_disjoint_subjects",
        ],
        "runs": ["create_run_dir", "save_run", "load_run"],
        "loop": ["TrainingLoop"],
        "distributed": ["init_distributed"],
        "pipeline": ["run_challenge", "resume_challenge"],
    },
)
