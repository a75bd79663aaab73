"""Known vulnerabilities of the installed dependencies, checked offline against a committed advisory snapshot.

The tests and CI reach no network (docs/reliability.md, "Static checks"), so `pip-audit` cannot run there. Instead
`make audit-refresh` (tests/security/refresh_vulnerabilities.py, which needs the network) writes what the
advisory services say about every distribution installed in the project's venv to tests/data/vulnerabilities.json,
and this check, run by `make test` before the tests, compares that snapshot with what is installed now:

- an installed distribution, or version of one, that the snapshot does not hold is named on one line as not
  audited (a transitive dependency released since the snapshot was taken, as happens between any two fresh
  installs, or something installed by hand); with ``--strict`` it fails the check. It does not fail by default: a
  fresh clone would otherwise fail its tests whenever any dependency of a dependency publishes a release;
- a finding of the snapshot for an installed version fails the check unless .vuln-ignore justifies it: one line
  ``ADVISORY-ID DISTRIBUTION REASON``, the reason saying why shopbot is not affected (the vulnerable API is not
  called, the input never comes from a shopper, ...); any of the advisory's ids or aliases may be named;
- a justification that matches no finding of an installed version fails it too (the pin moved past the advisory,
  or the advisory was withdrawn): a stale line would claim a review that no longer applies.

A distribution the snapshot could not audit (its advisories could not be read when it was taken) is named on one
line and does not fail the check: there is nothing to justify, and `make audit-online` audits it where the
advisory services answer.

This module reads files and ``importlib.metadata`` only; it imports no network code.

    .venv/bin/python -m tests.security.vulnerabilities            # exit 1 on any problem
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
SNAPSHOT = ROOT / "tests" / "data" / "vulnerabilities.json"
IGNORE_FILE = ROOT / ".vuln-ignore"
PROJECT = "shopbot"  # the editable install of this repository: not a dependency, not on PyPI


def canonical(name: str) -> str:
    """PEP 503's normalised name: `PyYAML`, `ruamel.yaml` and `typing_extensions` as the index spells them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def public(version: str) -> str:
    """The version without its local label (`2.13.0+cpu` -> `2.13.0`): advisories name public versions only."""
    return version.split("+", 1)[0]


def installed_distributions(exclude: Iterable[str] = (PROJECT,)) -> dict[str, str]:
    """Canonical name -> version of every distribution this interpreter sees (the first one on sys.path wins)."""
    skip = {canonical(name) for name in exclude}
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name:  # a broken install (metadata without a name): nothing to look up
            continue
        key = canonical(name)
        if key not in skip:
            found.setdefault(key, dist.version)
    return found


@dataclass(frozen=True)
class Justification:
    """One line of .vuln-ignore: this advisory, for this distribution, does not affect shopbot because..."""

    advisory: str
    distribution: str
    reason: str
    line: int


@dataclass
class Result:
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    findings: int = 0
    justified: int = 0
    not_audited: list[str] = field(default_factory=list)
    not_in_snapshot: list[str] = field(default_factory=list)  # newer than the snapshot (a problem with --strict)
    taken: str = "?"

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        unjustified = self.findings - self.justified
        line = (
            f"{self.checked} distributions checked against the advisory snapshot of {self.taken}: "
            f"{unjustified} unjustified findings ({self.findings} findings, {self.justified} justified in .vuln-ignore)"
        )
        if self.not_audited:
            line += f"; {len(self.not_audited)} not audited when the snapshot was taken"
        if self.not_in_snapshot:
            line += f"; {len(self.not_in_snapshot)} installed versions not in the snapshot"
        if self.problems:
            line += f"; {len(self.problems)} problems"
        return line


def parse_ignore(text: str) -> tuple[list[Justification], list[str]]:
    """The justifications of an ignore file and one problem per malformed line (`#` starts a comment)."""
    entries: list[Justification] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or len(parts[2].split()) < 3:
            problems.append(
                f".vuln-ignore line {number}: write ADVISORY-ID DISTRIBUTION and a reason of a few words "
                f"saying why shopbot is not affected (got {line!r})"
            )
            continue
        entries.append(Justification(parts[0].upper(), canonical(parts[1]), parts[2], number))
    return entries, problems


def load_snapshot(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _ids(vuln: Mapping[str, Any]) -> set[str]:
    return {str(vuln["id"]).upper(), *(str(alias).upper() for alias in vuln.get("aliases", []))}


def check(
    snapshot: Mapping[str, Any], installed: Mapping[str, str], justifications: Sequence[Justification] = (),
    *, strict: bool = False,
) -> Result:
    """Compare the installed distributions with the snapshot; every problem is one sentence naming the fix."""
    result = Result(taken=str(snapshot.get("taken", "?")))
    entries = {canonical(str(d["name"])): d for d in snapshot.get("distributions", [])}
    used: set[Justification] = set()
    for name, version in sorted(installed.items()):
        name = canonical(name)
        result.checked += 1
        entry = entries.get(name)
        if entry is None or public(str(entry["version"])) != public(version):
            held = f"it holds {entry['version']}" if entry is not None else "it does not hold it"
            stale = (f"{name} {version} is installed but the advisory snapshot of {result.taken} was taken without it "
                     f"({held}): run `make audit-refresh` (needs the network) and commit tests/data/vulnerabilities.json")
            if strict:
                result.problems.append(stale)
            else:
                result.not_in_snapshot.append(stale)
            continue
        if not entry.get("audited", True):
            result.not_audited.append(f"{name} {version}")
            continue
        for vuln in entry.get("vulns", []):
            result.findings += 1
            ids = _ids(vuln)
            match = [j for j in justifications if j.distribution == name and j.advisory in ids]
            if match:
                result.justified += 1
                used.update(match)
                continue
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed release"
            aliases = ", ".join(sorted(ids - {str(vuln["id"]).upper()}))
            described = " ".join(str(vuln.get("description", "")).split())[:160]
            result.problems.append(
                f"{name} {version}: {vuln['id']}{f' ({aliases})' if aliases else ''} [fixed in: {fixed}] {described} "
                f"-> upgrade the pin, or justify it in .vuln-ignore: {vuln['id']} {name} <why shopbot is not affected>"
            )
    for j in justifications:
        if j not in used:
            result.problems.append(
                f".vuln-ignore line {j.line}: {j.advisory} {j.distribution} matches no finding of the installed "
                "versions (the pin moved past it, or the advisory was withdrawn): remove the line"
            )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    parser.add_argument("--ignore-file", type=Path, default=IGNORE_FILE)
    parser.add_argument("--strict", action="store_true",
                        help="fail when an installed version is not in the snapshot (after `make audit-refresh`)")
    args = parser.parse_args(argv)
    if not args.snapshot.exists():
        print(f"{args.snapshot} is missing: run `make audit-refresh` (needs the network)", file=sys.stderr)
        return 1
    text = args.ignore_file.read_text(encoding="utf-8") if args.ignore_file.exists() else ""
    justifications, malformed = parse_ignore(text)
    result = check(load_snapshot(args.snapshot), installed_distributions(), justifications, strict=args.strict)
    result.problems[:0] = malformed
    for problem in result.problems:
        print(problem)
    for line in result.not_in_snapshot:
        print(f"not audited: {line}")
    if result.not_audited:
        print(
            f"not audited (their advisories could not be read when the snapshot was taken; `make audit-online` "
            f"audits them where the advisory services answer): {', '.join(result.not_audited)}"
        )
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
