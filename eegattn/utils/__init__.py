"""Small helpers shared by every eegattn package: atomic writes (:mod:`eegattn.utils.io`) and
argument checks (:mod:`eegattn.utils.check`). Nothing here imports torch, numpy or MNE."""
