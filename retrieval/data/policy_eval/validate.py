"""Check the policy evaluation set in this folder (standard library only).

    python retrieval/data/policy_eval/validate.py

Reads every document and questions.csv, prints counts, and exits with status 1
if anything is wrong: a (document, section) pair whose section is not exactly
one heading (or FAQ question line) of that document, a repeated heading, a
repeated question, a bad language/split value, too few rows of a kind, or a
document outside the agreed length and section range.
"""

import csv
import re
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

Heading = tuple[int, str]

HERE = Path(__file__).resolve().parent
HEADER = ["question", "language", "document", "section", "split"]
TUNE_DOCUMENTS = {"outdoor_store.md", "books_cn.md"}
CHINESE_DOCUMENTS = {"books_cn.md"}
CJK = re.compile(r"[\u3400-\u9fff]")
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.,:/-]*")


# ---------------------------------------------------------------- headings
# Each extractor returns (level, text) pairs in document order. Level 1 is
# the page title; FAQ question lines get level 9 so they can be told apart.

def markdown_headings(text: str) -> list[Heading]:
    out: list[Heading] = []
    for line in text.splitlines():
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            out.append((len(m.group(1)), m.group(2).strip()))
            continue
        # FAQ question line: a whole line in bold, or a "Q:" line
        m = re.match(r"^\s*(?:\*\*|__)(.+?)(?:\*\*|__)\s*$", line)
        if m:
            q = re.sub(r"^Q:\s*", "", m.group(1).strip())
            out.append((9, q.strip()))
            continue
        m = re.match(r"^\s*Q:\s*(.+?)\s*$", line)
        if m:
            out.append((9, m.group(1).replace("**", "").strip()))
    return out


def text_headings(text: str) -> list[Heading]:
    """Plain text: a line underlined by a line of only '=' (title) or '-'."""
    lines = text.splitlines()
    out: list[Heading] = []
    for i in range(len(lines) - 1):
        title, rule = lines[i].strip(), lines[i + 1].strip()
        if title and len(rule) >= 3 and set(rule) in ({"="}, {"-"}):
            out.append((1 if rule[0] == "=" else 2, title))
    return out


class _HeadingParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[Heading] = []
        self._level: int | None = None
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self._level, self._buf = int(tag[1]), []

    def handle_endtag(self, tag: str) -> None:
        if self._level is not None and tag == f"h{self._level}":
            self.headings.append((self._level, " ".join("".join(self._buf).split())))
            self._level = None

    def handle_data(self, data: str) -> None:
        if self._level is not None:
            self._buf.append(data)


def html_headings(text: str) -> list[Heading]:
    p = _HeadingParser()
    p.feed(text)
    p.close()
    return p.headings


def headings_of(path: Path) -> list[Heading]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return markdown_headings(text)
    if path.suffix == ".txt":
        return text_headings(text)
    if path.suffix in (".html", ".htm"):
        return html_headings(text)
    raise ValueError(f"no heading extractor for {path.name}")


def plain_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".html", ".htm"):
        text = re.sub(r"<[^>]+>", " ", text)
    return text


# ---------------------------------------------------------------- checks

def main() -> int:
    problems: list[str] = []
    documents = sorted(p for p in HERE.iterdir()
                       if p.suffix in (".md", ".txt", ".html") and p.name != "README.md")
    heads: dict[str, list[Heading]] = {}
    print("Documents")
    print(f"  {'file':32} {'EN words':>8} {'CJK chars':>9} {'sections':>8}")
    for path in documents:
        h = headings_of(path)
        heads[path.name] = h
        texts = Counter(t for _, t in h)
        for t, n in texts.items():
            if n > 1:
                problems.append(f"{path.name}: heading {t!r} occurs {n} times")
        # answerable sections: FAQ question lines if the page has them, else
        # every heading below the page title
        faq = [t for lvl, t in h if lvl == 9]
        sections = faq if faq else [t for lvl, t in h if lvl > 1]
        body = plain_text(path)
        words, cjk = len(WORD.findall(body)), len(CJK.findall(body))
        print(f"  {path.name:32} {words:8} {cjk:9} {len(sections):8}")
        if not 8 <= len(sections) <= 15:
            problems.append(f"{path.name}: {len(sections)} sections, expected 8-15")
        if path.name in CHINESE_DOCUMENTS:
            if not 1000 <= cjk <= 3000:
                problems.append(f"{path.name}: {cjk} Chinese characters, expected 1000-3000")
        elif not 600 <= words <= 1500:
            problems.append(f"{path.name}: {words} English words, expected 600-1500")

    qpath = HERE / "questions.csv"
    with qpath.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    if header != HEADER:
        problems.append(f"questions.csv: header {header}, expected {HEADER}")

    seen: dict[str, int] = {}
    used: Counter[tuple[str, str]] = Counter()
    by_doc: Counter[str] = Counter()
    by_doc_lang: Counter[tuple[str, str]] = Counter()
    by_split: Counter[str] = Counter()
    by_lang: Counter[str] = Counter()
    none_by_doc: Counter[str] = Counter()
    doc_split: dict[str, set[str]] = {}
    for n, row in enumerate(rows, start=2):
        where = f"questions.csv line {n}"
        if len(row) != 5 or any(not c.strip() for c in row):
            problems.append(f"{where}: expected 5 non-empty fields, got {row}")
            continue
        question, lang, doc, section, split = row
        if question != question.strip():
            problems.append(f"{where}: leading/trailing spaces in question")
        key = " ".join(question.casefold().split())
        if key in seen:
            problems.append(f"{where}: duplicate of line {seen[key]}: {question!r}")
        seen.setdefault(key, n)
        if lang not in ("en", "zh"):
            problems.append(f"{where}: language {lang!r}")
        elif (lang == "zh") != bool(CJK.search(question)):
            problems.append(f"{where}: language {lang} does not fit {question!r}")
        if doc not in heads:
            problems.append(f"{where}: unknown document {doc!r}")
            continue
        want = "tune" if doc in TUNE_DOCUMENTS else "heldout"
        if split != want:
            problems.append(f"{where}: split {split!r}, {doc} is {want}")
        doc_split.setdefault(doc, set()).add(split)
        if section == "NONE":
            none_by_doc[doc] += 1
        else:
            hits = sum(1 for _, t in heads[doc] if t == section)
            if hits != 1:
                problems.append(f"{where}: section {section!r} matches {hits} headings in {doc}")
            if question.casefold() == section.casefold():
                problems.append(f"{where}: question copies the heading")
            used[(doc, section)] += 1
        by_doc[doc] += 1
        by_doc_lang[(doc, lang)] += 1
        by_split[split] += 1
        by_lang[lang] += 1

    print(f"\nquestions.csv: {len(rows)} rows")
    print(f"  {'document':32} {'split':8} {'en':>4} {'zh':>4} {'NONE':>5} {'total':>6}")
    for doc in sorted(by_doc):
        print(f"  {doc:32} {'/'.join(sorted(doc_split[doc])):8} {by_doc_lang[(doc, 'en')]:4} "
              f"{by_doc_lang[(doc, 'zh')]:4} {none_by_doc[doc]:5} {by_doc[doc]:6}")
    print(f"  by language: {dict(sorted(by_lang.items()))}")
    print(f"  by split: {dict(sorted(by_split.items()))}")
    total_none = sum(none_by_doc.values())
    zh_on_en = sum(c for (d, lang), c in by_doc_lang.items()
                   if lang == "zh" and d not in CHINESE_DOCUMENTS and not d.endswith("bilingual.md"))
    en_on_zh = sum(c for (d, lang), c in by_doc_lang.items() if lang == "en" and d in CHINESE_DOCUMENTS)
    print(f"  NONE rows: {total_none}")
    print(f"  Chinese questions on English documents: {zh_on_en}")
    print(f"  English questions on Chinese documents: {en_on_zh}")

    unused = [(d, t) for d, h in heads.items() for lvl, t in h
              if lvl > 1 and (d, t) not in used]
    if unused:
        print("  headings no question points to (information only):")
        for d, t in unused:
            print(f"    {d}: {t}")

    if len(rows) < 180:
        problems.append(f"{len(rows)} questions, expected at least 180")
    if total_none < 25:
        problems.append(f"{total_none} NONE rows, expected at least 25")
    if zh_on_en < 20:
        problems.append(f"{zh_on_en} Chinese questions on English documents, expected 20")
    if en_on_zh < 15:
        problems.append(f"{en_on_zh} English questions on Chinese documents, expected 15")
    for path in documents:
        if by_doc[path.name] < 25:
            problems.append(f"{path.name}: only {by_doc[path.name]} questions")
        if none_by_doc[path.name] < 2:
            problems.append(f"{path.name}: only {none_by_doc[path.name]} NONE rows")
    if len(documents) < 6:
        problems.append(f"{len(documents)} documents, expected at least 6")

    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print("  " + p)
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
