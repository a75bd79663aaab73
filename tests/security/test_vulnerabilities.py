"""The offline vulnerability check (tests/security/vulnerabilities.py) on hand-made snapshots and installed lists.

Nothing here reaches the network: the snapshot and the installed distributions are parameters of ``check``, and
the refresh's parsing of PyPI's feed is tested on a literal.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from tests.security import vulnerabilities as vc
from tests.security.refresh_vulnerabilities import from_pypi_feed, requirements

VULN: dict[str, Any] = {
    "id": "GHSA-aaaa-bbbb-cccc",
    "aliases": ["CVE-2026-0001", "PYSEC-2026-1"],
    "fix_versions": ["1.2.1"],
    "description": "Path traversal in serve_static",
}


def _snapshot(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"taken": "2026-12-07", "tool": "pip-audit 2.10.1", "distributions": list(entries)}


def _entry(name: str, version: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "version": version, "audited": True, "vulns": list(vulns)}


def _why(advisory: str, dist: str = "webthing", line: int = 1) -> vc.Justification:
    return vc.Justification(advisory, dist, "shopbot never calls serve_static", line)


def test_a_clean_environment_passes_with_a_one_line_summary() -> None:
    result = vc.check(_snapshot(_entry("webthing", "1.2.0"), _entry("other", "3.0")), {"webthing": "1.2.0", "other": "3.0"})
    assert result.ok
    assert result.summary() == (
        "2 distributions checked against the advisory snapshot of 2026-12-07: "
        "0 unjustified findings (0 findings, 0 justified in .vuln-ignore)"
    )


def test_an_unjustified_finding_fails_naming_the_advisory_and_the_fix() -> None:
    result = vc.check(_snapshot(_entry("webthing", "1.2.0", VULN)), {"webthing": "1.2.0"})
    assert not result.ok
    [problem] = result.problems
    assert problem.startswith("webthing 1.2.0: GHSA-aaaa-bbbb-cccc (CVE-2026-0001, PYSEC-2026-1) [fixed in: 1.2.1]")
    assert ".vuln-ignore" in problem and "upgrade the pin" in problem
    assert "1 unjustified findings" in result.summary()


@pytest.mark.parametrize("advisory", ["GHSA-aaaa-bbbb-cccc", "CVE-2026-0001", "pysec-2026-1"])
def test_a_justified_finding_passes_by_any_of_its_ids(advisory: str) -> None:
    justifications, malformed = vc.parse_ignore(f"# comment\n\n{advisory}  WebThing  shopbot never calls serve_static\n")
    assert malformed == []
    result = vc.check(_snapshot(_entry("webthing", "1.2.0", VULN)), {"webthing": "1.2.0"}, justifications)
    assert result.ok, result.problems
    assert (result.findings, result.justified) == (1, 1)
    assert "0 unjustified findings (1 findings, 1 justified" in result.summary()


def test_a_justification_for_another_distribution_does_not_count() -> None:
    result = vc.check(_snapshot(_entry("webthing", "1.2.0", VULN)), {"webthing": "1.2.0"}, [_why(VULN["id"], "other")])
    assert len(result.problems) == 2  # the finding, and the line that matches nothing
    assert result.problems[0].startswith("webthing 1.2.0: GHSA-aaaa-bbbb-cccc")


def test_an_installed_distribution_missing_from_the_snapshot_is_named_and_fails_only_when_strict() -> None:
    snapshot, installed = _snapshot(_entry("webthing", "1.2.0")), {"webthing": "1.2.0", "newthing": "0.1"}
    result = vc.check(snapshot, installed)
    assert result.ok  # a release published after the snapshot must not fail a fresh clone's tests
    [line] = result.not_in_snapshot
    assert line.startswith("newthing 0.1 is installed but the advisory snapshot of 2026-12-07 was taken without it")
    assert result.summary().endswith("; 1 installed versions not in the snapshot")
    [problem] = vc.check(snapshot, installed, strict=True).problems
    assert problem == line and "make audit-refresh" in problem


def test_an_installed_version_the_snapshot_does_not_hold_fails_when_strict() -> None:
    result = vc.check(_snapshot(_entry("webthing", "1.2.0")), {"webthing": "1.2.1"}, strict=True)
    [problem] = result.problems
    assert "webthing 1.2.1 is installed" in problem and "it holds 1.2.0" in problem


def test_names_are_compared_normalised_and_versions_without_their_local_label() -> None:
    snapshot = _snapshot(_entry("ruamel-yaml", "0.17.40"), _entry("torch", "2.13.0+cpu"))
    assert vc.check(snapshot, {"ruamel.yaml": "0.17.40", "torch": "2.13.0+cu128"}).ok


def test_a_justification_that_matches_no_finding_fails() -> None:
    result = vc.check(_snapshot(_entry("webthing", "1.2.1")), {"webthing": "1.2.1"}, [_why("CVE-2026-0001", line=7)])
    [problem] = result.problems
    assert problem.startswith(".vuln-ignore line 7: CVE-2026-0001 webthing matches no finding")


def test_a_distribution_the_snapshot_could_not_audit_is_named_but_does_not_fail() -> None:
    entry = {"name": "oldthing", "version": "1.0", "audited": False, "reason": "not the latest release"}
    result = vc.check(_snapshot(entry), {"oldthing": "1.0"})
    assert result.ok
    assert result.not_audited == ["oldthing 1.0"]
    assert result.summary().endswith("; 1 not audited when the snapshot was taken")


@pytest.mark.parametrize("line", ["GHSA-aaaa-bbbb-cccc", "GHSA-aaaa-bbbb-cccc webthing", "CVE-1 webthing not used"])
def test_an_ignore_line_without_a_reason_is_a_problem(line: str) -> None:
    justifications, malformed = vc.parse_ignore(line + "\n")
    assert justifications == []
    assert malformed and malformed[0].startswith(".vuln-ignore line 1: write ADVISORY-ID DISTRIBUTION and a reason")


def test_main_fails_and_prints_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    installed = vc.installed_distributions()  # this venv's: main() reads the real environment
    missing, vulnerable, *rest = sorted(installed)
    entries = [_entry(vulnerable, installed[vulnerable], VULN), *(_entry(n, installed[n]) for n in rest)]
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(_snapshot(*entries)), encoding="utf-8")
    assert vc.main(["--snapshot", str(snapshot), "--ignore-file", str(tmp_path / "none")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{vulnerable} {installed[vulnerable]}: GHSA-aaaa-bbbb-cccc")
    assert out[1].startswith(f"not audited: {missing} {installed[missing]} is installed but the advisory snapshot")
    assert out[-1].startswith(f"{len(installed)} distributions checked") and out[-1].endswith("; 1 problems")
    assert vc.main(["--snapshot", str(snapshot), "--ignore-file", str(tmp_path / "none"), "--strict"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{missing} {installed[missing]} is installed but the advisory snapshot")
    assert out[-1].endswith("; 2 problems")


def test_the_committed_snapshot_and_ignore_file_are_well_formed() -> None:
    """Whatever is installed: the files `make test` reads parse, and every entry says what it found or why not."""
    data = vc.load_snapshot(vc.SNAPSHOT)
    assert data["tool"].startswith("pip-audit ") and len(data["taken"]) == 10
    for entry in data["distributions"]:
        assert entry["name"] == vc.canonical(entry["name"]) and entry["version"]
        assert entry["vulns"] is not None if entry["audited"] else entry["reason"]
        for vuln in entry.get("vulns", []):
            assert {"id", "aliases", "fix_versions", "description"} <= vuln.keys()
    assert vc.PROJECT not in {entry["name"] for entry in data["distributions"]}
    _, malformed = vc.parse_ignore(vc.IGNORE_FILE.read_text(encoding="utf-8"))
    assert malformed == []


def test_the_check_imports_no_network_code() -> None:
    tree = ast.parse(Path(vc.__file__).read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"urllib", "http", "socket", "ssl", "requests", "httpx", "subprocess"}


def test_pypi_feed_entries_are_read_as_pip_audit_reads_them() -> None:
    feed: list[dict[str, Any]] = [
        {"id": "PYSEC-2026-1", "aliases": ["CVE-2026-0001"], "fixed_in": ["1.2.1"], "summary": None,
         "details": "Path traversal\nin serve_static", "withdrawn": None},
        {"id": "GHSA-aaaa-bbbb-cccc", "aliases": ["CVE-2026-0001", "PYSEC-2026-1"], "fixed_in": ["1.2.1"],
         "summary": "Path traversal", "withdrawn": None},
        {"id": "PYSEC-2026-2", "aliases": [], "fixed_in": [], "details": "withdrawn", "withdrawn": "2026-05-01"},
    ]
    assert from_pypi_feed(feed) == [
        {
            "id": "PYSEC-2026-1",
            "aliases": ["CVE-2026-0001", "GHSA-aaaa-bbbb-cccc"],
            "fix_versions": ["1.2.1"],
            "description": "Path traversal in serve_static",
        }
    ]
    assert requirements({"torch": "2.13.0+cpu", "jinja2": "3.1.6"}) == "jinja2==3.1.6\ntorch==2.13.0\n"
