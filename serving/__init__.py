"""Serving: the lab's shared OpenAI-compatible LLM server (`serving.llm_server`) and the recommendation API
(`serving.recommend_server`, also ``python -m serving``); their settings live in `serving.config`."""

import socket


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (the OS picks it): for servers started by tests and
    benchmarks."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
