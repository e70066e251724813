"""Validation tuning: a seeded search over declared TrainConfig settings, every trial selected on validation only.

``config`` holds the ``[tune]`` table (budget, space, sampler and pruner settings), ``search`` the one module that
imports Optuna (TPE sampler, median pruning, the SQLite study), ``stage`` the entry function (`tune`) writing the
tune artifact (`llmrec_local.artifacts.tune`), ``__main__`` the CLI (``python -m llmrec_local.tune``). Trials train
through the pipeline runner's API (`llmrec_local.run.trials`).
"""
