"""The HTML report in a real browser: Debian's headless Chromium loads it, offline, and shows the warning and
the headline without a horizontal scrollbar at 1280 px. Skipped where no ``chromium`` is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report_study import SMOKE, make_study

from llmrec_local.report.stage import write_report

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium browser (apt-get install chromium)")

#: Appended to a copy of the page: the page's own width and what rendered, written into the DOM for --dump-dom.
_PROBE = ("<script>const d = document.documentElement; document.body.dataset.probe = JSON.stringify({"
          "scroll: d.scrollWidth, client: d.clientWidth, svgs: document.querySelectorAll('svg').length, "
          "widest: Math.max(...[...document.querySelectorAll('svg')].map(s => s.getBoundingClientRect().width))})"
          "</script>")


def _chromium(page: Path, profile: Path, *args: str) -> str:
    """Run headless Chromium on `page` with a fresh profile, no network helpers; returns its stdout."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--window-size=1280,900", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_loads_in_chromium_with_banner_and_headline(tmp_path: Path) -> None:
    results = make_study(model=SMOKE, recipe_model="smoke")
    # A long environment entry and many columns: the tables must scroll inside the page, not widen it.
    results["environment"] = {"hardware": {"platform": "Linux-" + "x" * 300}, "libraries": {"torch": "2.13.0"}}
    _, page = write_report(results, tmp_path / "report")
    probed = tmp_path / "probe.html"
    probed.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))

    dom = _chromium(probed, tmp_path / "profile-dom", "--dump-dom")
    assert 'id="synthetic-inputs"' in dom and "tiny RANDOM model" in dom and "not a quality claim" in dom
    assert 'id="headline"' in dom and "llmrec is best on recall@20" in dom
    probe = re.search(r'data-probe="([^"]+)"', dom)
    assert probe, "the page's script did not run"
    sizes = dict(re.findall(r"&quot;(\w+)&quot;:([\d.]+)", probe.group(1)))
    assert int(sizes["svgs"]) == 4 and float(sizes["widest"]) > 300  # the charts render at a readable size
    assert int(sizes["scroll"]) <= int(sizes["client"]) <= 1280  # nothing overflows the window

    shot = tmp_path / "report.png"
    _chromium(page, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000
