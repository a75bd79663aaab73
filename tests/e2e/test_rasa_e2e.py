"""The real Rasa 3.6.21 end to end (tests/e2e/rasa_e2e.py), outside the default run: ``pytest -m e2e tests/e2e``.

Minutes on first use (installs Rasa into its own Python 3.10 venv, builds the demo index); about two
minutes after that. Skipped where pyenv's Python 3.10 is missing and no Rasa venv exists yet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("rasa_e2e.py")
VENV = Path(os.environ.get("SHOPBOT_RASA_VENV", Path.home() / ".cache" / "shopbot" / "rasa-3.6.21-py3.10"))


@pytest.mark.e2e
@pytest.mark.slow
def test_a_rest_conversation_through_real_rasa_gets_shopbots_answers() -> None:
    if not (VENV / "bin" / "rasa").exists() and not (shutil.which("pyenv") or os.environ.get("SHOPBOT_RASA_PYTHON")):
        pytest.skip("no Rasa venv and no pyenv to make one with Python 3.10")
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-6000:]
    assert '"rasa_e2e": "passed"' in run.stdout
