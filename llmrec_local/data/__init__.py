"""Dataset library: source loaders (LLMRec's release, MovieLens, generic tables), filters, splits, the bundled and
synthetic datasets. The ``prepare`` stage (`llmrec_local.prepare`) drives it; the dataset artifact it writes is
owned by `llmrec_local.artifacts.dataset`.

``llmrec_local.data.arrays`` (numpy only) must stay importable on hosts without polars (a GPU machine that only
trains and evaluates), so this package imports nothing eagerly.
"""
