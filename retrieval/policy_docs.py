"""A shop's policy documents as they come: Markdown, plain text, HTML and Q/A FAQ pages, in any language.

Every format is read into the same thing: sections (a heading and its paragraphs), each paragraph one
:class:`retrieval.policy.Passage` that remembers its section. What counts as a heading:

- Markdown ``#`` headings and underlined headings (a line over ``===`` or ``---``);
- HTML ``<h1>``-``<h6>`` and ``<dt>``; a paragraph that is bold and nothing else (a FAQ's question);
- a FAQ's question line: ``Q: ...`` / ``Question: ...`` / ``问：`` (its answer's ``A:`` is dropped), a bold
  line, or a short line of its own that ends in a question mark;
- Chinese numbered headings (``一、配送说明``, ``第三条 退货``, ``【发票】``) and short UPPERCASE lines.

A first level-1 heading that no other level-1 heading follows is the document's title, not a section:
the text under it before the first section is named after the title.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["POLICY_SUFFIXES", "Block", "outline", "read_blocks", "read_policy_file", "sections_of"]

POLICY_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".text", ".html", ".htm"})

_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_UNDERLINE = re.compile(r"^\s*(=+|-+)\s*$")
_QUESTION_PREFIX = re.compile(r"^\s*(?:\*\*)?(?:Q|Question|问)\s*[:：.．]\s*(?:\*\*)?\s*(.+?)\s*(?:\*\*)?\s*$", re.I)
_ANSWER_PREFIX = re.compile(r"^\s*(?:\*\*)?(?:A|Answer|答)\s*[:：.．]\s*(?:\*\*)?\s*", re.I)
_BOLD_LINE = re.compile(r"^\s*(?:\*\*|__)(.+?)(?:\*\*|__)\s*:?\s*$")
_ZH_NUMBERED = re.compile(r"^\s*(?:[一二三四五六七八九十百]+[、.．]|第[一二三四五六七八九十百\d]+[条章节部分]|（[一二三四五六七八九十]+）)\s*(.+?)\s*$")
_ZH_BRACKET = re.compile(r"^\s*【(.+?)】\s*$")
_QUESTION_END = re.compile(r"[?？]\s*$")
MAX_HEADING_CHARS = 120  # a longer line is a paragraph, even when it ends in a question mark


@dataclass(frozen=True)
class Block:
    """A heading (``level`` > 0) or a paragraph (``level`` 0) of a document, in order."""

    text: str
    level: int = 0


def _is_upper_heading(line: str) -> bool:
    letters = [c for c in line if c.isalpha()]
    return (len(letters) >= 3 and all(c.isupper() for c in letters if c.isascii()) and line.isascii()
            and len(line) <= 60 and not line.rstrip().endswith((".", ",", ";")))


def _text_blocks(text: str) -> Iterator[Block]:
    """Headings and paragraphs of Markdown or plain text."""
    lines = text.splitlines()
    para: list[str] = []
    prev_blank = True

    def flush() -> Iterator[Block]:
        body = "\n".join(para).strip()
        para.clear()
        if body:
            yield Block(body)

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        nxt = lines[i + 1].rstrip() if i + 1 < len(lines) else ""
        stripped = line.strip()
        heading: Block | None = None
        if (m := _ATX.match(line)) is not None:
            heading = Block(m.group(2).strip(), len(m.group(1)))
        elif stripped and not para and _UNDERLINE.match(nxt) and len(nxt.strip()) >= 3 and not _UNDERLINE.match(line):
            heading = Block(stripped, 1 if nxt.strip().startswith("=") else 2)
            i += 1  # the underline
        elif (m := _QUESTION_PREFIX.match(line)) is not None:
            heading = Block(m.group(1).strip("* "), 3)
        elif _ZH_NUMBERED.match(line) is not None and len(stripped) <= 30:
            heading = Block(stripped, 2)
        elif (m := _ZH_BRACKET.match(line)) is not None:
            heading = Block(m.group(1).strip(), 2)
        elif (m := _BOLD_LINE.match(line)) is not None and prev_blank and len(stripped) <= MAX_HEADING_CHARS:
            heading = Block(m.group(1).strip(), 3)
        elif (prev_blank and _QUESTION_END.search(stripped) and len(stripped) <= MAX_HEADING_CHARS
              and nxt.strip() and not stripped.startswith(("-", "*", "•"))):
            heading = Block(stripped, 3)
        elif prev_blank and _is_upper_heading(stripped) and (not nxt.strip() or not _is_upper_heading(nxt.strip())):
            heading = Block(stripped, 2)
        if heading is not None:
            yield from flush()
            yield heading
            prev_blank = True
        elif not stripped:
            yield from flush()
            prev_blank = True
        else:
            para.append(_ANSWER_PREFIX.sub("", line) if not para else line)
            prev_blank = False
        i += 1
    yield from flush()


class _HTMLBlocks(HTMLParser):
    """Headings, paragraphs, list items and table rows of an HTML page; scripts and styles dropped."""

    _BLOCKS = frozenset({"p", "li", "dd", "td", "th", "div", "section", "article", "br", "tr", "blockquote", "pre"})
    _SKIP = frozenset({"script", "style", "nav", "footer", "head", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._text: list[str] = []
        self._level = 0
        self._skip = 0
        self._bold_only = True
        self._in_bold = 0
        self._cells: list[str] | None = None

    def _flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._text)).strip()
        self._text.clear()
        if not text:
            self._bold_only = True
            return
        if self._cells is not None:
            self._cells.append(text)
        elif self._level:
            self.blocks.append(Block(text, self._level))
        elif self._bold_only and len(text) <= MAX_HEADING_CHARS and _QUESTION_END.search(text):
            self.blocks.append(Block(text, 3))  # <p><strong>Can I ...?</strong></p>: a FAQ's question
        else:
            self.blocks.append(Block(text))
        self._bold_only = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag) or tag == "dt":
            self._flush()
            self._level = int(tag[1]) if tag != "dt" else 3
        elif tag == "tr":
            self._flush()
            self._cells = []
        elif tag in self._BLOCKS:
            if self._cells is None or tag not in {"td", "th"}:
                self._flush()
            else:
                self._flush_cell()
        elif tag in {"strong", "b"}:
            self._in_bold += 1

    def _flush_cell(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._text)).strip()
        self._text.clear()
        if text and self._cells is not None:
            self._cells.append(text)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag == "dt":
            self._flush()
            self._level = 0
        elif tag in {"td", "th"} and self._cells is not None:
            self._flush_cell()
        elif tag == "tr" and self._cells is not None:
            self._flush_cell()
            cells, self._cells = self._cells, None
            if cells:
                self.blocks.append(Block(" | ".join(cells)))
        elif tag in self._BLOCKS:
            self._flush()
        elif tag in {"strong", "b"}:
            self._in_bold = max(0, self._in_bold - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if data.strip() and not self._in_bold:
            self._bold_only = False
        self._text.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def read_blocks(text: str, suffix: str) -> list[Block]:
    """The headings and paragraphs of one document, by its file suffix."""
    if suffix.lower() in {".html", ".htm"}:
        parser = _HTMLBlocks()
        parser.feed(text)
        parser.close()
        return parser.blocks
    return list(_text_blocks(text))


def sections_of(blocks: Iterable[Block], doc: str) -> Iterator[tuple[str, str]]:
    """(section heading, paragraph) pairs: each paragraph under its nearest heading; a lone first level-1
    heading is the document's title: the text under it before the first section is named after it (after
    ``doc`` when there is no title)."""
    for section, _parents, text, _lead in outline(blocks, doc):
        yield section, text


def outline(blocks: Iterable[Block], doc: str) -> Iterator[tuple[str, tuple[str, ...], str, bool]]:
    """(section heading, the headings above it, paragraph, whether it is the document's lead) as
    :func:`sections_of` reads them: "Alaska, Hawaii and Overseas Territories" sits under "Shipping". The lead is
    the text before the first section of a document that has sections ("This policy explains how ...")."""
    blocks = list(blocks)
    tops = [b for b in blocks if b.level == 1]
    title = tops[0] if len(tops) == 1 and blocks and blocks[0] is tops[0] else None
    has_sections = any(b.level and b is not title for b in blocks)
    stack: list[Block] = []  # the open headings, outermost first
    section = title.text if title is not None else doc
    for b in blocks:
        if b.level:
            if b is not title:
                while stack and stack[-1].level >= b.level:
                    stack.pop()
                stack.append(b)
                section = b.text
            continue
        yield section, tuple(h.text for h in stack[:-1]), b.text, has_sections and not stack


def read_policy_file(path: Path) -> list[tuple[str, str]]:
    """(section, paragraph) pairs of one policy file (Markdown, text or HTML; UTF-8)."""
    return list(sections_of(read_blocks(path.read_text(encoding="utf-8"), path.suffix), path.stem))
