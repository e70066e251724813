"""Serving: the shared OpenAI-compatible LLM server for the lab (`serving.llm_server`)."""
