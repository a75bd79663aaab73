"""The atheris harnesses (tests/hostile/fuzz_targets.py) for a fixed budget each, in a subprocess: a crash
(an exception other than the clean "bad input" error, or one input taking over a second) fails the test with
the harness's report, and libFuzzer leaves the input as ``crash-*`` in the test's temporary folder to turn into
a regression test. Slow (about two minutes): ``pytest -m slow tests/hostile/test_fuzz.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HARNESS = Path(__file__).with_name("fuzz_targets.py")
ROOT = Path(__file__).parents[2]
RUNS = {"catalog": 20_000, "query": 200_000}


@pytest.mark.parametrize("target", sorted(RUNS))
def test_the_fuzzer_finds_no_crash_within_its_budget(target: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(HARNESS), target, f"-atheris_runs={RUNS[target]}", "-max_len=4096", "-seed=1",
         f"-artifact_prefix={tmp_path}/"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    crashes = sorted(tmp_path.glob("crash-*"))
    assert proc.returncode == 0 and not crashes, (
        f"{target} fuzzing crashed (exit {proc.returncode}; inputs: {crashes}):\n{proc.stderr[-4000:]}")
    assert f"Done {RUNS[target]}" in proc.stderr  # the whole budget ran
