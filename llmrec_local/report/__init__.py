"""The ``report`` stage: a study's results (``results.json``) -> ``report.md`` and a self-contained ``report.html``."""
