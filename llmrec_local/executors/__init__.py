"""Executors: where the batches of a stage run. The stages build their work as a list of batches (the same batches a
single process would run, so every answer and vector is the same); an executor answers them. `ray_executor` spreads
them over a pool of Ray actors (the only module that imports ray)."""
