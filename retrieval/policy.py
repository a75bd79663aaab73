"""Find the passage of the shop's policy documents that answers a customer-service question.

The policy is Markdown: ``## Section`` headings over paragraphs (the bundled demo: ``policy.md``, with
a Chinese summary whose paragraphs start with a topic label such as ``退货：``). Each paragraph or
bullet list is one passage. Scoring fuses BM25 (English stemming, jieba for Chinese) with the
cosine of the question's encoder, the same split as product search: MiniLM for English, the
multilingual encoder for Chinese. The answer text is the policy's own words, so nothing is invented;
the language model (a later layer) may rephrase it, checked against these passages.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from retrieval.catalog import policy_path
from retrieval.encoders import Encoder
from retrieval.lexical import BM25, has_cjk, tokenize, zh_words
from retrieval.policy_docs import POLICY_SUFFIXES, outline, read_blocks

__all__ = ["Handoff", "Passage", "PolicyConfig", "PolicyHit", "PolicyIndex", "PolicyMatch", "answer_text", "source_line"]

# Chinese topic words for the English section headings, so a section boost works for Chinese passages
# whose label ("退款与换货：") names the topic in Chinese.
SECTION_ALIASES: dict[str, tuple[str, ...]] = {
    "shipping": ("配送", "运费", "发货"),
    "placing an order": ("下单", "购物车"),
    "order tracking": ("订单跟踪", "物流"),
    "changing or cancelling an order": ("修改", "取消"),
    "returns": ("退货",),
    "refunds": ("退款",),
    "exchanges and sizes": ("换货", "尺码"),
    "payment": ("支付", "付款"),
    "invoices": ("发票",),
    "warranty": ("保修",),
    "promotions and discount codes": ("优惠",),
    "account and privacy": ("账户", "隐私"),
    "contacting a person": ("人工", "客服"),
    "complaints": ("投诉",),
    "lost or damaged parcels": ("丢失", "损坏"),
}
# question words that say nothing about the topic ("how do I ...", "can you tell me ...")
_STOP = frozenset(tokenize(
    "a an the i me my mine you your yours we our us it its is are was were be been am do does did can could "
    "would should will shall may might must how what when where which who whom why there here this that these "
    "those to of in on at for from with about by as and or if then so not no yes please tell know want need "
    "get got have has had some any just also there's what's it's i'm hi hello thanks thank 我 你 的 吗 呢 了 是 "
    "怎么 什么 可以 能 请问 一下 吧 啊 有 在 要 想"
))
# Chinese words of two characters or more that say how a question is asked, not what about ("多少钱", "什么时候",
# "怎么办", "会不会"): a document need not use them to answer it
_ZH_FUNCTION = frozenset({
    "多少", "多少钱", "几个", "几天", "多久", "多长时间", "怎么", "怎么办", "怎样", "如何", "什么", "什么样", "时候", "什么时候", "为什么", "哪里", "哪儿",
    "哪些", "哪个", "会不会", "能不能", "可不可以", "是不是", "有没有", "还能", "或者", "我们", "你们", "他们", "这个", "那个", "这些", "那些", "一个", "一些",
    "一下", "没有", "可以", "今天", "明天", "昨天", "下午", "上午", "晚上", "现在", "已经", "请问", "帮忙", "需要", "如果", "但是", "因为", "所以", "然后",
    "而且", "自己", "东西", "问题", "一直", "还是", "就是", "可能", "应该", "必须", "一起", "一样", "怎么样", "多大", "大概", "左右", "需不需要", "要不要",
})
_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")
_ZH_LABEL = re.compile(r"^([^：:\n]{1,12})[：:]")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")


@dataclass(frozen=True)
class Passage:
    doc: str
    section: str
    text: str
    language: str
    anchor: str
    index: int
    parents: tuple[str, ...] = ()  # the headings above its section ("Shipping" above "Delivery Zones")
    # the document's introduction, before its first section ("This policy explains how ..."): it says what the
    # document is about, and answers no question itself
    lead: bool = False

    @property
    def label(self) -> str:
        """The topic a reader sees: the section, or a Chinese paragraph's own label."""
        if self.language == "zh":
            m = _ZH_LABEL.match(self.text)
            if m:
                return m.group(1)
        return self.section


@dataclass(frozen=True)
class PolicyHit:
    passage: Passage
    score: float  # fused, in [0, 1]
    coverage: float  # share of the question's (idf-weighted) words found in the passage
    cosine: float | None
    # the encoders' part of the score alone (no shared words): what says a message is about this passage
    # rather than merely using its words ("do you sell bicycles?" and "we never sell personal data")
    meaning: float = 0.0
    # the share of the question's words that its document never uses (the same for every hit of a question)
    unknown: float = 0.0


@dataclass(frozen=True)
class Handoff:
    """When no section answers the question and a person should: the chance that none does, a logistic model
    of three things about the best passage - how close it is in meaning, how far ahead of the best passage of
    any other section (a question about nothing in particular finds several sections about as close), and the
    share of the question's words its document never uses, counted when they share a language ("do you take
    Klarna?" of a shop whose policy never names it). Above ``threshold``, the question goes to a person.

    Fitted by ``shopbot eval support --cv`` on the six documents of retrieval/data/policy_eval (219 questions,
    32 that no section answers), whose figure is the one of each document with the model fitted on the five
    others (docs/conversations.md)."""

    w_meaning: float = -2.142
    w_margin: float = -1.350
    w_unknown: float = 2.381
    bias: float = -1.713
    threshold: float = 0.27

    def chance(self, meaning: float, margin: float, unknown: float) -> float:
        z = self.w_meaning * meaning + self.w_margin * margin + self.w_unknown * unknown + self.bias
        return float(1.0 / (1.0 + np.exp(-z)))

    @staticmethod
    def features(hits: Sequence[PolicyHit], language: str) -> tuple[float, float, float]:
        """(meaning, margin, unknown) of a question's hits, best first."""
        best = hits[0]
        other = next((h.score for h in hits if h.passage.section != best.passage.section), 0.0)
        unknown = best.unknown if best.passage.language == language else 0.0
        return best.meaning, best.score - other, unknown

    def hands_over(self, hits: Sequence[PolicyHit], language: str) -> bool:
        return self.chance(*self.features(hits, language)) >= self.threshold


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")


def split_passages(text: str, doc: str, suffix: str = ".md") -> list[Passage]:
    """One passage per paragraph or bullet list, each remembering its section (retrieval/policy_docs.py reads
    the headings of Markdown, text, HTML and FAQ pages)."""
    out: list[Passage] = []
    for section, parents, body, lead in outline(read_blocks(text, suffix), doc):
        lang = "zh" if has_cjk(body) else "en"
        out.append(Passage(doc, section, body, lang, _slug(section), len(out), parents, lead))
    return out


@dataclass(frozen=True)
class PolicyConfig:
    """How passages are scored. ``w_passage`` weighs the cosine to the passage itself, ``w_section`` to its
    whole section (heading and every paragraph: "is return shipping free?" is answered by a section whose
    second paragraph says so), ``w_heading`` to the heading alone (a FAQ's question line is the best index
    of its answer); ``w_lex`` BM25 over the passage and its heading. ``threshold``: the fused score below
    which the section the shopper's intent names does not answer the question. ``handoff``: when no section
    answers it at all (a person should; see :class:`Handoff`); None keeps the cosine/coverage rule.

    Chosen on the two ``tune`` documents of retrieval/data/policy_eval (75 questions; 54 weight settings x
    every threshold, `docs/research-log.md`, 2026-12-06): 0.733 right against 0.667 for the plain
    single-best-section retriever, the best figure, and of the settings that reach it the one that puts the
    right section first most often (0.828 of the answerable questions); the words (BM25) also pick the
    paragraph inside a section. The four other documents were not looked at."""

    w_lex: float = 0.5
    w_passage: float = 1.0
    w_section: float = 1.0
    w_heading: float = 0.5
    threshold: float | None = 0.18
    handoff: Handoff | None = Handoff()


class PolicyIndex:
    def __init__(self, passages: Sequence[Passage], encoders: Mapping[str, Encoder] | None = None,
                 config: PolicyConfig | None = None) -> None:
        if not passages:
            raise ValueError("The policy documents contain no text.")
        self.passages = list(passages)
        self.config = config or PolicyConfig()
        # the heading is part of what is matched ("Refunds" answers "refund?"), not of what is shown
        docs = [f"{' '.join(p.parents)} {p.section} {p.label if p.language == 'zh' else ''} {p.text}" for p in self.passages]
        self.bm25 = BM25.build(docs)
        n = self.bm25.n_docs
        df = np.diff(self.bm25.matrix.indptr).astype(np.float32)
        self.idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        self.encoders = dict(encoders or {})
        self.vectors = {key: enc.encode(docs, kind="passage") for key, enc in self.encoders.items()}
        # each passage's section as one text, and its heading alone, in every encoder's space
        names = list(dict.fromkeys(p.section for p in self.passages))
        self._section_of = np.asarray([names.index(p.section) for p in self.passages], dtype=np.int64)
        first = {p.section: p for p in reversed(self.passages)}
        heads = [" > ".join((*first[name].parents, name)) for name in names]  # "Shipping > Alaska, Hawaii ..."
        whole = [head + "\n" + "\n".join(p.text for p in self.passages if p.section == name)
                 for head, name in zip(heads, names, strict=True)]
        self.section_vectors = {key: enc.encode(whole, kind="passage") for key, enc in self.encoders.items()}
        self.heading_vectors = {key: enc.encode(heads, kind="passage") for key, enc in self.encoders.items()}
        self.languages = np.asarray([p.language for p in self.passages])
        self._text = unicodedata.normalize("NFKC", "\n".join(docs)).lower()
        # the words of each passage's heading ("退货", "Refunds"): a question that names them all asks for it
        self._heading = [frozenset(t for t in tokenize(p.label if p.language == "zh" else p.section) if t not in _STOP)
                         for p in self.passages]

    @classmethod
    def from_path(cls, path: str | Path | None = None, encoders: Mapping[str, Encoder] | None = None,
                  config: PolicyConfig | None = None) -> PolicyIndex:
        """Index a policy file (Markdown, text or HTML), or every such file of a directory (the demo policy
        when None)."""
        p = Path(path) if path is not None else policy_path()
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in POLICY_SUFFIXES) if p.is_dir() else [p]
        if not files:
            raise ValueError(f"No policy documents ({', '.join(sorted(POLICY_SUFFIXES))}) in {p}.")
        passages: list[Passage] = []
        for f in files:
            for q in split_passages(f.read_text(encoding="utf-8"), f.stem, f.suffix):
                passages.append(replace(q, index=len(passages)))
        return cls(passages, encoders, config)

    def sections(self) -> list[str]:
        return list(dict.fromkeys(p.section for p in self.passages))

    def section(self, name: str) -> list[Passage]:
        return [p for p in self.passages if p.section.lower() == name.lower()]

    def _headed(self, sections: Sequence[str]) -> Sequence[str]:
        """``sections`` (the intent's topics, the demo policy's headings) when this policy has one of them as a
        heading, else none: a shop's own document is ranked by what it says, and the intent's topic must not
        pick its section by a label that merely looks alike (配送 of "三、配送说明" for every delivery-ish question)."""
        wanted = {x.lower() for x in sections}
        return sections if any(p.section.lower() in wanted for p in self.passages) else ()

    def _in_sections(self, sections: Sequence[str]) -> np.ndarray:
        wanted = {s.lower() for s in sections}
        aliases = [a for s in wanted for a in SECTION_ALIASES.get(s, ())]
        return np.asarray([
            p.section.lower() in wanted or (p.language == "zh" and any(a in p.label for a in aliases))
            for p in self.passages
        ])

    def search(self, question: str, k: int = 3, language: str | None = None,
               sections: Sequence[str] = (), section_boost: float = 0.3) -> list[PolicyHit]:
        lang = language or ("zh" if has_cjk(question) else "en")
        sections = self._headed(sections)
        tokens = [t for t in tokenize(question) if t not in _STOP] or tokenize(question)
        lex = self.bm25.scores(tokens)
        top = float(lex.max()) if lex.size else 0.0
        lex_n = lex / top if top > 0 else lex
        # idf-weighted share of the question's words present in each passage: an absolute measure
        ids = sorted(set(self.bm25.term_ids(tokens)))
        unknown = len(set(tokens)) - len(ids)
        total_idf = float(self.idf[ids].sum()) + unknown * float(self.idf.max(initial=1.0)) * 0.5
        cov = np.zeros(len(self.passages), dtype=np.float32)
        for j in ids:
            rows = self.bm25.matrix.indices[self.bm25.matrix.indptr[j]: self.bm25.matrix.indptr[j + 1]]
            cov[rows] += self.idf[j]
        cov = cov / total_idf if total_idf > 0 else cov
        cfg = self.config
        # English to English through the English encoder; anything across languages (or Chinese) through the
        # multilingual one, which reads both
        key = "multi" if lang == "zh" and "multi" in self.vectors else ("en" if "en" in self.vectors else next(iter(self.vectors), None))
        cos = meaning = None
        score = lex_n.copy()
        if key is not None:
            qv = self.encoders[key].encode([question], kind="query")[0]
            cos = self.vectors[key] @ qv
            sec = self.section_vectors[key] @ qv
            head = self.heading_vectors[key] @ qv
            other = "multi" if key == "en" and "multi" in self.vectors else None
            if other is not None and (self.languages != lang).any():
                qm = self.encoders[other].encode([question], kind="query")[0]
                across = self.languages != lang
                cos = np.where(across, self.vectors[other] @ qm, cos)
                sec_m, head_m = self.section_vectors[other] @ qm, self.heading_vectors[other] @ qm
                sec_p = np.where(across, sec_m[self._section_of], sec[self._section_of])
                head_p = np.where(across, head_m[self._section_of], head[self._section_of])
            else:
                sec_p, head_p = sec[self._section_of], head[self._section_of]
            dense_w = cfg.w_passage + cfg.w_section + cfg.w_heading
            dense = (cfg.w_passage * np.clip(cos, 0.0, 1.0) + cfg.w_section * np.clip(sec_p, 0.0, 1.0)
                     + cfg.w_heading * np.clip(head_p, 0.0, 1.0))
            meaning = dense / dense_w if dense_w > 0 else dense
            score = (cfg.w_lex * lex_n + dense) / (cfg.w_lex + dense_w)
        if sections:
            score = score + section_boost * self._in_sections(sections)
        # "退货政策是什么？" names the 退货 section: it beats 退款与换货, which USE finds a little closer
        asked = set(tokens)
        score = score + 0.15 * np.asarray([bool(h) and h <= asked for h in self._heading], dtype=np.float32)
        # answer in the question's language when the documents have that language
        if (self.languages == lang).any():
            score = np.where(self.languages == lang, score, score * 0.5)
        order = np.argsort(-score, kind="stable")[:k]
        share_unknown = self._zh_unknown(question) if lang == "zh" else (unknown / len(set(tokens)) if tokens else 0.0)
        return [PolicyHit(self.passages[i], float(min(1.0, score[i])), float(cov[i]),
                          None if cos is None else float(cos[i]), 0.0 if meaning is None else float(meaning[i]),
                          share_unknown)
                for i in order]

    def _zh_unknown(self, question: str) -> float:
        """The share of a Chinese question's words (jieba's dictionary words of two characters or more, less how it
        is asked: ``_ZH_FUNCTION``) that the documents never write. Chinese has no spaces, so a word counts as written
        wherever its characters stand together ("发货" in "当天发货"), a longer one where any two of its characters
        do ("开发票" in "开具电子普通发票"); "香港" is not in "港澳台地区"."""
        words = [w for w in zh_words(unicodedata.normalize("NFKC", question).lower())
                 if len(w) > 1 and has_cjk(w) and w not in _ZH_FUNCTION]
        content = list(dict.fromkeys(words))
        if not content:
            return 0.0

        def written(w: str) -> bool:
            return w in self._text or (len(w) > 2 and any(w[i:i + 2] in self._text for i in range(len(w) - 1)))

        return sum(not written(w) for w in content) / len(content)

    @staticmethod
    def confident(hit: PolicyHit, *, in_sections: bool = False) -> bool:
        """Whether ``hit`` really answers the question (vs. the best of nothing relevant)."""
        if hit.cosine is not None and hit.cosine >= 0.45:
            return True
        if in_sections:
            return hit.coverage >= 0.2 or (hit.cosine is not None and hit.cosine >= 0.25)
        return hit.coverage >= 0.4 and (hit.cosine is None or hit.cosine >= 0.2)

    def answer(self, question: str, *, language: str | None = None, sections: Sequence[str] = ()) -> str | None:
        """The policy's own words for ``question``, or None when nothing relevant was found."""
        m = self.lookup(question, language=language, sections=sections)
        return m.text if m else None

    def lookup(self, question: str, *, language: str | None = None, sections: Sequence[str] = (),
               k: int = 3, unanswered: bool = False) -> PolicyMatch | None:
        """What answers ``question``: the best passage as text with its source, and the ``k`` best passages
        (label, text) for a writer to phrase an answer from; None when nothing relevant was found, or with
        ``unanswered`` a match that says so (``answers`` False) and how close the documents came."""
        searched = self.search(question, k=len(self.passages), language=language, sections=sections)
        hits = self._answering(searched, question, language, sections)
        if not hits:
            if not unanswered:
                return None
            return PolicyMatch("", [], searched[0].meaning if searched else 0.0, answers=False)
        return PolicyMatch(answer_text(hits, self.passages, language=language or ("zh" if has_cjk(question) else "en")),
                           [(h.passage.label if h.passage.language == "zh" else h.passage.section, _plain(h.passage.text))
                            for h in hits[:k]], hits[0].meaning)

    def lookup_hits(self, question: str, *, language: str | None = None, sections: Sequence[str] = ()
                    ) -> list[PolicyHit] | None:
        """The passages that answer ``question``, best first, or None when nothing does (a person should)."""
        hits = self.search(question, k=len(self.passages), language=language, sections=sections)
        return self._answering(hits, question, language, sections)

    def _answering(self, hits: list[PolicyHit], question: str, language: str | None, sections: Sequence[str]
                   ) -> list[PolicyHit] | None:
        """The passages of ``hits`` (the question's search, best first) that answer it, or None (a person
        should)."""
        if not hits:
            return None
        best = hits[0]
        lang = language or ("zh" if has_cjk(question) else "en")
        threshold = self.config.threshold if self.vectors else None  # BM25 alone: the coverage rule
        sections = self._headed(sections)  # the intent's sections are the demo policy's headings: a shop may have none
        # Where the intent's topic is one of this shop's sections and the best passage is in it, the two agree and
        # the section answers ("any deals today?" asked under a promotions intent)
        agree = bool(sections) and bool(self._in_sections(sections)[best.passage.index])
        if best.passage.lead and not agree:
            # a document's lead introduces it and answers nothing itself: a question nearest to it is about
            # nothing the shop's sections say ("can I tip my driver?": "FRESHLANE ... CUSTOMER POLICY")
            return None
        if self.vectors and self.config.handoff is not None:
            # no section answers it: a person should
            if not agree and self.config.handoff.hands_over(hits, lang):
                return None
            if not sections:
                return hits
        elif not sections:
            # BM25 alone: the words must say so
            return hits if self.confident(best) else None
        mask = self._in_sections(sections)
        if not mask[best.passage.index]:
            # the classifier named another topic: only a clear match outside it overrides it
            strong = (best.cosine is not None and best.cosine >= 0.5) or (best.cosine is None and best.coverage >= 0.7)
            if strong:
                return hits
        inside = [h for h in hits if mask[h.passage.index]]
        if inside and (inside[0].score >= threshold if threshold is not None else self.confident(inside[0], in_sections=True)):
            return inside
        # The topic is certain but the words match nothing in particular ("I want my money back"):
        # the section's opening passage in the question's language states the rule.
        rows = [i for i in np.flatnonzero(mask) if self.passages[i].language == lang] or list(np.flatnonzero(mask))
        if rows:
            return [PolicyHit(self.passages[int(rows[0])], 0.0, 0.0, None)]
        return None


@dataclass(frozen=True)
class PolicyMatch:
    text: str  # the best passage as the shopper reads it, with its source line
    passages: list[tuple[str, str]]  # (section or heading, plain text), best first
    score: float = 0.0  # how close the best passage is in meaning (PolicyHit.meaning), for routing
    # False: no passage answers the question (a person should); asked for with ``lookup(..., unanswered=True)``,
    # which then still says how close the documents came (``score``), with no text
    answers: bool = True


def _plain(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    return _EMPHASIS.sub(r"\2", text)


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    stops = [head.rfind(s) for s in (". ", "。", "！", "？", "; ", "；", "\n")]
    end = max(stops)
    return head[: end + 1].rstrip() if end > max_chars // 3 else head.rsplit(" ", 1)[0] + " …"


def answer_text(hits: Sequence[PolicyHit], passages: Sequence[Passage] = (), max_chars: int = 700,
                language: str | None = None) -> str:
    """The best passage as plain text (plus the next one of its section when short), with its source."""
    best = hits[0].passage
    text = _plain(best.text)
    nxt = passages[best.index + 1] if passages and best.index + 1 < len(passages) else None
    # the next paragraph only when it is on the same topic: a summary section (the Chinese one) holds one
    # labelled paragraph per topic, and "可以用支付宝付款吗？" must not be answered with the warranty too
    if (len(text) < 250 and nxt is not None and nxt.section == best.section and nxt.language == best.language
            and nxt.label == best.label):
        text += "\n\n" + _plain(nxt.text)
    text = _cut(text, max_chars)
    return f"{text}\n{source_line(best.label if best.language == 'zh' else best.section, language or best.language)}"


def source_line(label: str, language: str) -> str:
    """Where an answer came from (its section's ``label``), in the shopper's language: "— from our Returns
    policy", "— from our FAQ: Can I ...?", "— 摘自：退货" (also for an English document: the passage stays
    as the shop wrote it)."""
    if language == "zh":
        return f"— 摘自：{label}"
    return f"— from our FAQ: {label}" if label.rstrip().endswith(("?", "？")) else f"— from our {label} policy"
