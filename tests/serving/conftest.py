"""The recommendation-service fixtures of `testkit.recommend` (a tiny trained run, the real server on 127.0.0.1, an
HTTP client and the reference answers) for test_app, test_recommend and test_recommend_server. Fixtures are built
only when a test asks for them, so the lab-LLM-server tests here start none of them."""

from testkit.recommend import client, ref, server, tiny_run  # noqa: F401  (fixtures, found by name)
