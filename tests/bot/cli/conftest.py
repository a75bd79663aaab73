"""The CLI as a shop owner types it, on the hashing encoders (no models load): ``run("reindex", ...)``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import cli


@pytest.fixture
def run(hashing_cli_env: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def _run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return _run
