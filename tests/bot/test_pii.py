"""Personal data a shopper writes (e-mail, phone, card number, street address) is redacted in log lines and in
the feedback export by default, and ordinary shopping text (prices, SKUs, order numbers, sizes, every demo
catalog title and every benchmark query) is left exactly as it was."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.observability.logs import log_handler
from bot.observability.pii import luhn_ok, redact_pii
from bot.settings import Settings
from bot.store.database import Store
from bot.store.records import TurnRecord
from tests.fakes.clock import Clock

DATA = Path(__file__).parents[2] / "retrieval" / "data"

#: (kind, what a shopper wrote, the personal part that must disappear, its tag)
PERSONAL = [
    ("email", "send the invoice to jane.doe+shop@example.co.uk please", "jane.doe+shop@example.co.uk", "[EMAIL]"),
    ("phone", "call me on +44 20 7946 0958 after six", "7946 0958", "[PHONE]"),
    ("phone", "my number is (555) 123-4567", "123-4567", "[PHONE]"),
    ("phone", "555-123-4567 is my cell", "555-123-4567", "[PHONE]"),
    ("phone", "请打我手机13812345678", "13812345678", "[PHONE]"),
    ("card", "charge 4111 1111 1111 1111 for the coat", "4111 1111 1111 1111", "[CARD]"),
    ("card", "amex 378282246310005 ok?", "378282246310005", "[CARD]"),
    ("address", "deliver to 221B Baker Street, London", "221B Baker Street", "[ADDRESS]"),
    ("address", "ship it to 1600 Pennsylvania Ave. by Friday", "Pennsylvania Ave", "[ADDRESS]"),
    ("address", "送到北京市朝阳区建国路88号", "建国路88号", "[ADDRESS]"),
]

#: ordinary shopping text that must come through unchanged
ORDINARY = [
    "red running shoes under $80, size 42",
    "Xiaomi Redmi Buds 5 Pro Wireless Earbuds, White for 68.00 USD",
    "where is my order 100234567?",
    "order #A1B2C3 and ORD-2024-000123 arrived, ref 20240512-0042",
    "is ELE-00002 in stock? and PHO-00001",
    "a 2-pack of 10 x 20 cm frames, 1,299.00 total, delivered 2024-05-12 at 12:30",
    "13 inch laptop with 16 GB RAM and 512 GB SSD",
    "tracking 1Z999AA10123456784, parcel 2 of 3",
    "my order number is 1234567890123456",  # 16 digits that fail the Luhn check
    "size 38-40, waist 32, Main Street Jeans",  # a brand name is not an address without a house number
]


@pytest.mark.parametrize(("kind", "text", "personal", "tag"), PERSONAL, ids=[f"{p[0]}-{i}" for i, p in enumerate(PERSONAL)])
def test_each_kind_is_replaced_by_its_tag(kind: str, text: str, personal: str, tag: str) -> None:
    out = redact_pii(text)
    assert personal not in out and tag in out, out


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_shopping_text_is_untouched(text: str) -> None:
    assert redact_pii(text) == text


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005")
    assert not luhn_ok("4111111111111112") and not luhn_ok("1234567890123456")


def test_no_demo_title_description_or_benchmark_query_is_changed() -> None:
    """The false-positive measure: every catalog text a trainer reads and every query of the needs and
    judgment files. One changed title would garble a product in every log line and export."""
    with (DATA / "demo_catalog.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    texts = [r[k] for r in rows for k in ("title", "title_zh", "description") if r.get(k)]
    queries: list[str] = []
    for path in sorted(DATA.glob("*.csv")):
        with path.open(encoding="utf-8") as fh:
            queries += [r["query"] for r in csv.DictReader(fh) if r.get("query")]
    assert len(rows) >= 1000 and len(queries) >= 1000
    changed = [t for t in texts + queries if redact_pii(t) != t]
    assert changed == []


# ------------------------------------------------------------------------------------------ logs


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_log_line_is_redacted_by_default_and_kept_when_switched_off(fmt: str) -> None:
    log = logging.getLogger("tests.pii")
    for redact in (True, False):
        buf = io.StringIO()
        handler = log_handler(fmt, stream=buf, redact_personal=redact)
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
        try:
            for _kind, text, _personal, _tag in PERSONAL:
                log.debug("Shopper wrote %r", text, extra={"text_in": text})
            log.warning("An ordinary line: %s", ORDINARY[3])
        finally:
            log.removeHandler(handler)
        out = buf.getvalue()
        if fmt == "json":
            assert all(json.loads(line) for line in out.splitlines())
        for _kind, text, personal, tag in PERSONAL:
            if redact:
                assert personal not in out and tag in out
            else:
                assert personal in out or personal in json.dumps(text)[1:-1]
        assert ORDINARY[3] in out


def test_the_setting_defaults_to_on(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).redact_pii is True
    assert Settings(data_dir=tmp_path, redact_pii=False).redact_pii is False


# ---------------------------------------------------------------------------------------- export


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "buffer", clock=Clock(), retry_interval=0)
    yield s
    s.close()


def _export(store: Store, tmp_path: Path, **kw: bool) -> str:
    out = tmp_path / f"export-{len(kw)}-{kw.get('redact')}.jsonl"
    store.export_feedback(out, **kw)
    return out.read_text(encoding="utf-8")


def test_the_export_redacts_every_kind_in_every_text_field_and_keeps_the_rest(store: Store, tmp_path: Path) -> None:
    user = store.touch_user("telegram", "111", "en").user_id
    for i, (_kind, text, _personal, _tag) in enumerate(PERSONAL):
        tid = store.log(TurnRecord(f"t{i:07d}", user, text, f"Noted: {text}", intent="search", query=text,
                                   slots={"note": text}, shown=[("ELE-00002", 1, 0.9)]))
        store.log_feedback(user, "rating", turn_id=tid, sku="ELE-00002", value=4, comment=text)
    store.log(TurnRecord("ordinary", user, ORDINARY[0], "Here are 3: from $49.99", intent="search", query=ORDINARY[0],
                         shown=[("PHO-00001", 1, 0.8)]))

    redacted = _export(store, tmp_path)
    raw = _export(store, tmp_path, redact=False)

    for _kind, _text, personal, tag in PERSONAL:
        assert personal not in redacted and tag in redacted
        assert personal in raw
    lines = [json.loads(line) for line in redacted.splitlines()]
    assert len(lines) == len(PERSONAL) + 1
    # what a trainer needs is intact: ids, SKUs, ranks, values, and ordinary searches
    assert lines[0]["shown"] == [{"sku": "ELE-00002", "rank": 1, "score": 0.9}]
    assert lines[0]["ratings"][0]["value"] == 4 and lines[0]["ratings"][0]["sku"] == "ELE-00002"
    assert lines[-1]["text_in"] == ORDINARY[0] and lines[-1]["reply"] == "Here are 3: from $49.99"
    assert lines[0]["user_id"] == user
