"""The review report in a real browser: headless Chromium loads it with no console message,
every figure renders (the page's own counter, read from the dumped DOM), and a screenshot
is a real picture. Skipped without Chromium, except in CI (PERFMODEL_CI=1: .ci/run
installs Debian's chromium, so a missing one fails). PERFMODEL_SCREENSHOT_DIR keeps a copy
of the screenshot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from perfmodel.review_api import review, write_review

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
SUITE = """\
- name: resnet50-b1
  model: resnet50
- name: "llama <script>alert(1)</script> decode"
  model: llama-3-8b
  phase: decode
  batch: 8
  seq: 2048
- name: llama-3-70b-decode-b1
  model: llama-3-70b
  phase: decode
  seq: 4096
"""


def browser() -> str:
    found = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if found is None:
        if os.environ.get("PERFMODEL_CI") == "1":
            pytest.fail("no Chromium in CI: .ci/run installs Debian's chromium package")
        pytest.skip(f"no headless browser ({', '.join(BROWSERS)})")
    return found


def run_browser(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """One headless run (no remote debugging), its own profile, logs on stderr."""
    return subprocess.run(
        [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", f"--user-data-dir={profile}", "--enable-logging=stderr",
         "--v=0", *args], capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    suite = folder / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    data = review("h100", baseline=["a100", "mi300x"], workloads=suite)
    return write_review(data, folder / "review.html")


def console_messages(log: str) -> list[str]:
    """What the page wrote to its console, and uncaught errors (Chromium logs both as
    ``CONSOLE`` lines): the report writes nothing there."""
    return [line for line in log.splitlines()
            if re.search(r":CONSOLE[:(\]]|Uncaught", line)]


def test_report_renders_in_chromium(report, tmp_path):
    exe = browser()
    url = report.resolve().as_uri()
    html = report.read_text(encoding="utf-8")
    expected = html.count('<figure class="chart">')
    assert expected == 6  # roofline, performance, memory, bound, tornado, design front

    dom = run_browser(exe, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    assert f'data-figures-expected="{expected}"' in body.group(0)
    assert f'data-figures="{expected}"' in body.group(0), body.group(0)  # all rendered
    assert console_messages(dom.stderr) == []
    assert "alert(1)" in dom.stdout and "<script>alert" not in dom.stdout  # text, not code

    shot = tmp_path / "shot.png"
    run = run_browser(exe, tmp_path / "profile-shot", f"--screenshot={shot}",
                      "--window-size=1280,2000", "--hide-scrollbars", url)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    assert console_messages(run.stderr) == []
    keep = os.environ.get("PERFMODEL_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "review.png")
    assert shot.stat().st_size > 50_000
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1])[::97], axis=0)) > 20  # not blank
    assert pixels[..., :3].std() > 0.05


def test_console_messages_are_caught():
    # what Chromium logs for console.error and for an exception the page does not catch
    log = ('[1:1:1203/1.0:INFO:CONSOLE:12] "boom", source: file:///r.html (12)\n'
           '[1:1:1203/1.0:INFO:CONSOLE(7)] "Uncaught ReferenceError: f is not defined"\n'
           "[1:1:1203/1.0:ERROR:dbus/bus.cc:405] Failed to connect to the bus")
    assert len(console_messages(log)) == 2
