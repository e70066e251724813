"""The pipeline runner: the only code that runs stages in order.

``config`` holds the recipe (one TOML file -> typed, frozen configs of every stage), ``stage`` the runner
(`run_pipeline`), ``multiseed`` studies over seeds without a recipe file, ``__main__`` the CLI
(``python -m llmrec_local.run RECIPE.toml``).
"""
