"""`seecam verdict`: is the candidate (SE) really better than the baseline (CNN) across training seeds?

One training run per model measures test-set noise only; training-seed noise is larger. Seeds vary the training
alone (initial weights, data order, augmentation, dropout): every seed validates on the same split
(`data.split_seed`). This pools the MLflow training runs of one configuration (tag `config_sha`: every shared
training input but `seed`, with the device, precision and torch version, so runs of mixed kinds never pool),
one network per model (tag `model_sha`: where a model has several in the pool, the workspace's run.json
chooses, or it is refused), pairs baseline and candidate by `seed` tag, and treats the seed as the unit:
d_i = acc_candidate,i − acc_baseline,i. The test and explain figures come from each training run's records
(tracking/stages.py) of the workspace's evaluate and explain configurations (params and code): a run without
such an evaluate record is skipped and counted, and one without such an explain record leaves faithfulness
out; verdict.md and verdict.json name the configurations pooled.
Without `--config-sha` it pools the latest sweep's configuration (runs of `seecam sweep` experiments),
else the only configuration with >= 2 paired seeds, else it lists them: it reads MLflow alone, so it works
with any -S overrides and in a clone without data.
The decision is the 95% t interval of mean(d) over seeds (stats.py): it excludes 0 → that model is
better; otherwise "not resolved", with the seeds a paired t test would need at 80% power for the observed
d_z. One plain sentence says the same for a reader who is no statistician ("SE won 2 of 3 seeds; not enough
to tell; about 15 seeds would"). Second opinions: the bootstrap over seeds, and the per-image paired
bootstrap pooled over seeds (test-set noise of the seed-averaged models, from evaluate's
`evaluate/test_correct.txt` artifacts). Per-class differences get the median and the sign test's interval
(stats.median_interval), which stays within the seeds' own values however few they are.

Runs that are deleted, failed, killed or still running, or whose tags are malformed (well_formed), are skipped
and counted; of two finished runs of one model and seed, the latest counts. Outputs: reports/verdict/{verdict.json,
verdict.md, seeds.png} and a `verdict` MLflow run in the same experiment that lists the runs it pooled; a rerun
over the same runs and record configurations updates that run instead of adding another.

One module per job, so each reader imports only what it needs: `record` (the runs, the pairs and the `Verdict`
that verdict.json holds; the report stage reads only this), `pooling` (the MLflow queries that choose, select and
pair the runs), `summary` (the numbers and sentences from the pairs), `render` (verdict.md and the files) and
`run` (the command: all of them, and the `verdict` MLflow run).
"""
