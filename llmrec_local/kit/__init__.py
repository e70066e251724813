"""The offline kit: carry the whole system (wheels for the target machine, the lock, the project, models, the
bundled data) into a network-less lab, install it with ``pip --no-index``, and verify every byte that arrived.

``python -m llmrec_local.kit pack ...`` writes a kit (`llmrec_local.kit.pack`); ``python -m llmrec_local.kit verify
KIT`` checks it against its MANIFEST (`llmrec_local.kit.manifest`). `llmrec_local.kit.torch_source` decides where
the CPU torch build comes from (also run as a plain script by scripts/setup_env.sh and scripts/lock.sh).
No heavy library is imported by any module here (torch, vllm, transformers stay out).
"""
