"""``python -m llmrec_local.doctor``: check a machine before the first run (see `llmrec_local.doctor.checks`)."""
