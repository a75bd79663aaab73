"""Write tests/data/vulnerabilities.json, the advisory snapshot that `make test` checks offline (needs the network).

For every distribution installed in the project's venv (this interpreter's), the known vulnerabilities as
`pip-audit` (pinned in the Makefile, in a venv of its own: .venv/audit) reports them: its PyPI service first
(PyPI's per-release JSON API), then its OSV service for whatever PyPI did not answer. A distribution that neither
service audited is looked up in PyPI's per-project JSON API, whose ``vulnerabilities`` are those of the latest
release, read as pip-audit reads them (withdrawn advisories dropped, aliases merged): when the installed version
is that latest release, this is the same feed pip-audit's PyPI service reads; when it is not, the distribution is
written down as not audited, with the reason, and nothing is guessed. A failed request aborts the refresh
rather than writing a snapshot that looks clean.

    make audit-refresh      # = .venv/bin/python -m tests.security.refresh_vulnerabilities --pip-audit .venv/audit/bin/pip-audit
    make audit-online       # the same pip-audit, live, against what is installed, failing on any unjustified finding

The offline check is tests/security/vulnerabilities.py; this module is the only one that talks to the network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.security.vulnerabilities import (
    IGNORE_FILE,
    SNAPSHOT,
    canonical,
    installed_distributions,
    parse_ignore,
    public,
)

PYPI_PROJECT = "https://pypi.org/pypi/{name}/json"
DESCRIPTION_CHARS = 240  # the snapshot keeps a short description; the advisory id leads to the full text
TIMEOUT_S = 30


def requirements(installed: Mapping[str, str]) -> str:
    """`name==version` lines for pip-audit (`--no-deps --disable-pip`): public versions, as the index has them."""
    return "".join(f"{name}=={public(version)}\n" for name, version in sorted(installed.items()))


def run_pip_audit(pip_audit: Path, installed: Mapping[str, str], service: str) -> tuple[dict[str, Any], str]:
    """pip-audit's JSON report for `installed` from one service, or ({}, why) when the service did not answer."""
    with tempfile.TemporaryDirectory() as tmp:
        req, out = Path(tmp) / "requirements.txt", Path(tmp) / "audit.json"
        req.write_text(requirements(installed), encoding="utf-8")
        command = [
            str(pip_audit), "-r", str(req), "--no-deps", "--disable-pip", "--vulnerability-service", service,
            "--format", "json", "--desc", "on", "--aliases", "on", "--progress-spinner", "off",
            "--timeout", str(TIMEOUT_S), "--output", str(out),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if not out.exists():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            return {}, lines[-1] if lines else f"pip-audit exited {done.returncode} without a report"
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return report, ""


def short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1].rstrip() + "…"


def from_pypi_feed(vulns: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """PyPI's `vulnerabilities` entries as pip-audit's PyPI service turns them into results (pip_audit/_service/pypi.py,
    pip_audit/_audit.py): withdrawn ones dropped, summary (else details) as the description, and entries whose id
    or aliases overlap merged into the first one."""
    merged: list[dict[str, Any]] = []
    for v in vulns:
        if v.get("withdrawn") is not None:
            continue
        ids = {str(v["id"]), *map(str, v.get("aliases") or [])}
        twin = next((m for m in merged if ids & {m["id"], *m["aliases"]}), None)
        if twin is not None:
            twin["aliases"] = sorted(set(twin["aliases"]) | (ids - {twin["id"]}))
            continue
        merged.append(
            {
                "id": str(v["id"]),
                "aliases": sorted(ids - {str(v["id"])}),
                "fix_versions": [str(f) for f in v.get("fixed_in") or []],
                "description": short(str(v.get("summary") or v.get("details") or "N/A")),
            }
        )
    return merged


def pypi_project(name: str) -> dict[str, Any]:
    url = PYPI_PROJECT.format(name=name)
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        data: dict[str, Any] = json.load(response)
    return data


def from_latest_release(name: str, version: str) -> dict[str, Any]:
    """The snapshot entry of one distribution from PyPI's per-project JSON API (see the module's docstring)."""
    entry: dict[str, Any] = {"name": name, "version": version}
    try:
        project = pypi_project(name)
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        return entry | {"audited": False, "reason": "not on PyPI (its per-project JSON API answered 404)"}
    latest = str(project["info"]["version"])
    if latest != public(version):
        return entry | {
            "audited": False,
            "reason": f"pip-audit's services did not answer and {public(version)} is not PyPI's latest release "
            f"({latest}), the only one whose advisories PyPI's per-project JSON API lists",
        }
    return entry | {"audited": True, "source": "PyPI JSON API (latest release)",
                    "vulns": from_pypi_feed(project.get("vulnerabilities") or [])}


def snapshot(installed: Mapping[str, str], pip_audit: Path) -> dict[str, Any]:
    version = subprocess.run([str(pip_audit), "--version"], capture_output=True, text=True, check=True)
    entries: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for service in ("pypi", "osv"):
        pending = {n: v for n, v in installed.items() if n not in entries}
        if not pending:
            break
        report, failure = run_pip_audit(pip_audit, pending, service)
        answered = 0
        for dep in report.get("dependencies", []):
            name = canonical(dep["name"])
            if "skip_reason" in dep or name not in pending:
                continue
            answered += 1
            vulns = [
                {"id": v["id"], "aliases": sorted(v.get("aliases", [])), "fix_versions": v.get("fix_versions", []),
                 "description": short(str(v.get("description") or "N/A"))}
                for v in dep.get("vulns", [])
            ]
            entries[name] = {"name": name, "version": pending[name], "audited": True,
                             "source": f"pip-audit ({service})", "vulns": vulns}
        skipped = [d["skip_reason"] for d in report.get("dependencies", []) if "skip_reason" in d]
        why = f"; it failed: {failure[:300]}" if failure else ""
        if skipped:
            why = f"; it skipped {len(skipped)}, e.g. {skipped[0]!r}"
            if service == "pypi":
                why += " (what pip-audit says when PyPI's per-release JSON API answers 404)"
        notes.append(f"pip-audit --vulnerability-service {service}: audited {answered} of {len(pending)}{why}")
        print(notes[-1], file=sys.stderr)
    pending = {n: v for n, v in installed.items() if n not in entries}
    if pending:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for entry in pool.map(lambda item: from_latest_release(*item), sorted(pending.items())):
                entries[entry["name"]] = entry
        latest = sum(1 for n in pending if entries[n]["audited"])
        notes.append(
            f"PyPI JSON API, per project: audited {latest} of {len(pending)} (the installed version is the latest "
            f"release); {len(pending) - latest} not audited (an older release: no per-release data reached)"
        )
        print(notes[-1], file=sys.stderr)
    return {
        "taken": dt.datetime.now(dt.UTC).date().isoformat(),
        "tool": version.stdout.strip(),
        "python": f"{platform.python_version()} {sys.platform}",
        "notes": notes,
        "distributions": [entries[name] for name in sorted(entries)],
    }


def audit_online(pip_audit: Path, installed: Mapping[str, str], ignore_file: Path, service: str) -> int:
    """pip-audit live against what is installed: non-zero on any finding not justified in .vuln-ignore, and on any
    distribution it could not audit (--strict)."""
    text = ignore_file.read_text(encoding="utf-8") if ignore_file.exists() else ""
    justifications, malformed = parse_ignore(text)
    for problem in malformed:
        print(problem, file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(requirements(installed), encoding="utf-8")
        command = [str(pip_audit), "-r", str(req), "--no-deps", "--disable-pip", "--strict", "--desc", "on",
                   "--vulnerability-service", service, "--progress-spinner", "off", "--timeout", str(TIMEOUT_S)]
        for j in justifications:
            command += ["--ignore-vuln", j.advisory]
        return subprocess.run(command, check=False).returncode or (1 if malformed else 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pip-audit", type=Path, required=True, help="the pinned pip-audit (make: .venv/audit)")
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    parser.add_argument("--online", action="store_true", help="run pip-audit live instead of writing the snapshot")
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi", help="with --online")
    args = parser.parse_args(argv)
    installed = installed_distributions()
    if args.online:
        return audit_online(args.pip_audit, installed, IGNORE_FILE, args.service)
    try:
        data = snapshot(installed, args.pip_audit)
    except OSError as error:  # urllib's URLError and socket timeouts: no snapshot is better than a wrong one
        print(f"PyPI's JSON API did not answer ({error}): the snapshot was not written", file=sys.stderr)
        return 1
    args.snapshot.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    audited = [d for d in data["distributions"] if d["audited"]]
    findings = sum(len(d["vulns"]) for d in audited)
    print(
        f"{args.snapshot}: {len(data['distributions'])} distributions, {len(audited)} audited, {findings} findings "
        f"({data['tool']}, {data['taken']}); now run `.venv/bin/python -m tests.security.vulnerabilities`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
