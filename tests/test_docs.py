"""The documentation cannot drift: a generated page that matches the code, a short README, links that resolve.

docs/configuration.md is written by docs/gen_configuration.py from ``bot.settings.Settings``; the README is the
front door (at most 200 lines, opening with the two commands that set everything up); every relative link in
README.md and docs/*.md must point to a file that exists, and a ``#heading`` to a heading that exists, so moving
a page or renaming a section breaks a test rather than a reader's click.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _generator() -> ModuleType:
    """docs/ is not a package: load the script by path, as `python docs/gen_configuration.py` runs it."""
    spec = importlib.util.spec_from_file_location("gen_configuration", DOCS / "gen_configuration.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def _prose(text: str) -> str:
    """The text a reader sees as prose: code blocks and inline code hold paths and commands, not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors by its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _relative_links(page: Path) -> list[str]:
    text = _prose(page.read_text(encoding="utf-8"))
    links = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [t for t in links if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]  # http:, https:, mailto: ...


def test_configuration_page_matches_the_settings() -> None:
    gen = _generator()
    assert gen.main(["--check"]) == 0, (
        "docs/configuration.md is stale: run .venv/bin/python docs/gen_configuration.py"
    )


def test_configuration_check_fails_on_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The guard itself: a page that lost a variable is reported in one sentence with exit code 1."""
    gen = _generator()
    stale = tmp_path / "configuration.md"
    stale.write_text(gen.render().replace("SHOPBOT_DATA_DIR", "SHOPBOT_DATADIR"), encoding="utf-8")
    monkeypatch.setattr(gen, "PAGE", stale)
    assert gen.main(["--check"]) == 1
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "gen_configuration.py" in out


def test_configuration_page_lists_every_setting_with_its_variable_and_default() -> None:
    from bot.settings import Settings

    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| `SHOPBOT_")}
    assert set(rows) == {f"`SHOPBOT_{name.upper()}`" for name in Settings.model_fields}
    assert "`~/.shopbot`" in rows["`SHOPBOT_DATA_DIR`"]  # the home directory, not this machine's path
    assert "`minilm`" in rows["`SHOPBOT_ENCODER`"]


def test_readme_is_a_short_front_door_that_opens_with_the_two_commands() -> None:
    """At most 200 lines; after the title and one paragraph saying what shopbot is, the first thing a newcomer
    meets is the code block with the two commands that do all the set-up, before any section."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, "README.md is the front door: move reference material to docs/"
    assert lines[0].startswith("# "), "README.md starts with its title"
    start = next(i for i, line in enumerate(lines) if line.startswith("```"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    before = [line for line in lines[1:start] if line.strip()]
    assert not any(line.startswith("#") for line in before), "the commands come before the first section"
    assert start <= 15, "at most one short paragraph before the two commands"
    commands = [line.split("#")[0].strip() for line in lines[start + 1 : end] if line.strip()]
    assert commands == ["make chat", "make test"]


def test_every_docs_page_is_in_the_readme_index() -> None:
    linked = {Path(t.split("#")[0]).name for t in _relative_links(README) if t.startswith("docs/")}
    pages = {p.name for p in DOCS.glob("*.md")}
    assert pages <= linked, f"not linked from README.md: {sorted(pages - linked)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in _relative_links(page):
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_link_check_sees_a_broken_link(tmp_path: Path) -> None:
    """The guard itself: a link to a missing page or heading is found, one in a code block is not a link."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## A `code` heading\n\nSee [gone](missing.md), [here](#a-code-heading), [bad](#nope).\n\n"
        "```\n[not a link](nowhere.md)\n```\n\nand `[nor this](nowhere.md)`.\n",
        encoding="utf-8",
    )
    assert _relative_links(page) == ["missing.md", "#a-code-heading", "#nope"]
    assert _anchors(page) == {"title", "a-code-heading"}
