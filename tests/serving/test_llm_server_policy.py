"""The lab LLM server's policy (issue 13): the key reaches vLLM through the environment only, a non-loopback bind
needs a key, and ``--stop`` signals only a process recorded in its PID file with the same start time and command
line. Stand-in processes (`sleep` in a session of its own) take the server's place; no vLLM is started."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmrec_local.errors import ConfigError
from serving.config import load_server_config
from serving.llm_server import (
    check_bind,
    main,
    pid_file_path,
    process_identity,
    server_env,
    stop_recorded,
    vllm_serve_args,
    write_pid_file,
)

KEY = "sk-lab-Zq81xVv0secret"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A process leading its own group (as the server does), ended by PID afterwards when still running."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_the_key_goes_to_vllm_through_the_environment_only(tmp_path: Path) -> None:
    cfg = load_server_config(overrides=["host=\"0.0.0.0\""])
    env = server_env(cfg, {"LLMREC_API_KEY": KEY, "PATH": "/bin"})
    assert env == {"LLMREC_API_KEY": KEY, "PATH": "/bin", "VLLM_API_KEY": KEY}
    assert KEY not in " ".join(vllm_serve_args(cfg, tmp_path, "smoke", {}))
    assert "--api-key" not in vllm_serve_args(cfg, tmp_path, "smoke", {})
    # no key here: an inherited VLLM_API_KEY is dropped, so the server is open exactly when this tool says so
    assert server_env(cfg, {"VLLM_API_KEY": "stale", "PATH": "/bin"}) == {"PATH": "/bin"}


def test_a_key_in_the_config_or_extra_args_is_refused_without_echo() -> None:
    with pytest.raises(ConfigError) as info:
        load_server_config(overrides=[f'api_key="{KEY}"'])
    assert KEY not in str(info.value) and str(info.value).startswith("server.api_key: the key is never read")
    with pytest.raises(ConfigError) as info:
        load_server_config(overrides=[f'extra_args=["--api-key", "{KEY}"]'])
    assert KEY not in str(info.value) and "extra_args must not carry --api-key" in str(info.value)


def test_non_loopback_bind_needs_a_key(caplog: pytest.LogCaptureFixture) -> None:
    cfg = load_server_config(overrides=['host="0.0.0.0"'])
    with pytest.raises(ConfigError) as info:
        check_bind(cfg, None)
    assert str(info.value) == ("host='0.0.0.0' is not a loopback address and $LLMREC_API_KEY (api_key_env) is not "
                               "set: anyone who can reach this machine could use the server. Export a key as "
                               "LLMREC_API_KEY (clients read the same variable), or bind host=127.0.0.1")
    with caplog.at_level(logging.WARNING, logger="serving.llm_server"):
        check_bind(cfg, KEY)
        check_bind(load_server_config(overrides=['host="::1"']), None)  # loopback: no key needed, no warning
    assert [r.getMessage() for r in caplog.records] == [
        "binding 0.0.0.0:8000, reachable from other machines; requests need the key in $LLMREC_API_KEY"]
    assert KEY not in caplog.text


def test_stop_refuses_a_process_it_did_not_start(sleeper: subprocess.Popen, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        main(["--stop", str(sleeper.pid), "--run-dir", str(tmp_path)])
    assert str(info.value).startswith(f"no PID file in {tmp_path.resolve()} records PID {sleeper.pid}: "
                                      "serving.llm_server did not start it")
    assert sleeper.poll() is None  # never signalled


def test_stop_refuses_a_reused_pid(sleeper: subprocess.Popen, tmp_path: Path) -> None:
    path = pid_file_path(tmp_path, 8000)
    write_pid_file(path, sleeper.pid, base_url="http://127.0.0.1:8000/v1", model="smoke")
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "start_ticks": record["start_ticks"] - 1}))  # recorded earlier: reused
    with pytest.raises(ConfigError, match=rf"PID {sleeper.pid} is no longer the server recorded in .*different "
                                          r"start_ticks.*Refusing to signal process"):
        stop_recorded(str(sleeper.pid), tmp_path)
    assert sleeper.poll() is None and not path.exists()


def test_stop_refuses_a_foreign_pid_file(sleeper: subprocess.Popen, tmp_path: Path) -> None:
    path = tmp_path / "llm_server_8000.pid"
    path.write_text(str(sleeper.pid))  # a bare PID, as other tools write: not ours
    with pytest.raises(ConfigError, match="is not a PID file written by serving.llm_server"):
        stop_recorded(str(path), tmp_path)
    assert sleeper.poll() is None


def test_stop_stops_a_recorded_server_by_pid(sleeper: subprocess.Popen, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = pid_file_path(tmp_path, 8001)
    write_pid_file(path, sleeper.pid, base_url="http://127.0.0.1:8001/v1", model="smoke")
    assert json.loads(path.read_text())["cmdline"] == process_identity(sleeper.pid)["cmdline"]
    assert main(["--stop", str(sleeper.pid), "--run-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"stopped server {sleeper.pid} (http://127.0.0.1:8001/v1, model smoke)\n"
    assert sleeper.wait(timeout=10) == -15 and not path.exists()


def test_stop_of_an_exited_server_removes_its_pid_file(sleeper: subprocess.Popen, tmp_path: Path) -> None:
    path = pid_file_path(tmp_path, 8002)
    write_pid_file(path, sleeper.pid, model="smoke")
    sleeper.kill()
    sleeper.wait(timeout=10)
    assert stop_recorded(str(path), tmp_path) == (f"server {sleeper.pid} is not running (removed the stale PID file "
                                                  f"{path})")
    assert not path.exists()
