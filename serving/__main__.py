"""``python -m serving``: the recommendation server, the same command as ``python -m serving.recommend_server``
(`serving.recommend_server.main`; see that module for the options). The lab's LLM server stays
``python -m serving.llm_server``."""

from llmrec_local.cli import run_main
from serving.recommend_server import main

if __name__ == "__main__":
    run_main(main)
