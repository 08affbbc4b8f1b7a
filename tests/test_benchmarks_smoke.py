"""The benchmark suite end to end in its quick mode: it runs and writes its tables (timings not judged)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"

pytestmark = pytest.mark.skipif(
    not RUN.exists() or not sys.platform.startswith("linux"),
    reason="needs the source checkout's benchmarks/ and Linux's /proc",
)


def test_quick_benchmark_writes_every_table(tmp_path: Path) -> None:
    output = tmp_path / "results.md"
    raw = tmp_path / "results.json"
    # A script path, not -m: the checkout stays off sys.path, so the installed package is measured.
    finished = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--output", str(output), "--json", str(raw)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, f"stdout:\n{finished.stdout}\nstderr:\n{finished.stderr}"
    text = output.read_text(encoding="utf-8")
    assert text.strip() in finished.stdout
    for heading in (
        "### Overhead per own message",
        "### Scale: users in one runner process",
        "### Burst: one user, one runner",
        "### Work per own message",
        "### Targets",
    ):
        assert heading in text, heading
    assert "Machine: " in text
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in text
    # One row per measured user count, each with figures, and every message answered.
    assert "\n| 1 | " in text
    assert "\n| 5 | " in text
    assert "messages without a PUT: 0." in text
    assert "| Helix `PUT /helix/chat/color` | 1.00 |" in text
    assert raw.read_text(encoding="utf-8").startswith("{")
