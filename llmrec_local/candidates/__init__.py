"""The ``candidates`` stage: top-K unseen items per user from a trained base run (or imported), for the pair job.

``config`` holds `CandidatesConfig` (the ``[candidates]`` recipe table), ``stage`` the entry function, ``__main__``
the CLI (``python -m llmrec_local.candidates``).
"""
