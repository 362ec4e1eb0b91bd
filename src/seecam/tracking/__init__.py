"""MLflow tracking, split by job so that each stage depends on the part it runs and no more.

- `store`: where runs live (the repo root, the default store and artifacts, run.json), URI resolution,
  health checks and connecting; used by every stage and by `seecam verdict`, `sweep`, `ui`, `server`.
- `training`: the training run's lifecycle (open, reopen, repair, describe, log, close) and its keys.
- `stages`: the later stages' records, child runs of the training runs (evaluate, explain, report), and the
  verdict's run.

The train stages import `store` and `training` only: editing a helper that evaluate or the verdict alone
uses changes neither their dvc.yaml deps nor the training code digest.
"""
