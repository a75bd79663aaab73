"""Personal data in what shoppers write, replaced by a placeholder wherever the text leaves the conversation
for someone other than the shop owner's console: log lines (bot/observability/logs.py) and the feedback
export that trainers and other teams receive (bot/store/reports.py).

Four kinds, each replaced by its own tag so that a reader still sees that something was there:

* e-mail addresses -> ``[EMAIL]``;
* payment card numbers: 13 to 19 digits (spaces or dashes allowed between them) that pass the Luhn check
  -> ``[CARD]``. The Luhn check is what keeps an order number or a barcode of the same length readable;
* phone numbers -> ``[PHONE]``: an international ``+`` number, a grouped national number ("(555) 123-4567",
  "555-123-4567", "020 7946 0958") or a Chinese mobile number (11 digits starting 13-19). A bare run of
  digits is not a phone number here, because order numbers, SKUs and prices are bare runs of digits;
* street addresses -> ``[ADDRESS]``: a house number, one to four words and a street word ("221B Baker
  Street", "1600 Pennsylvania Ave"), or a Chinese road and number ("建国路88号").

The patterns are deliberately narrow: a false positive garbles a product title or a search a trainer needs,
and tests/bot/test_pii.py measures that no demo catalog title and no benchmark query is changed.
"""

from __future__ import annotations

import re

__all__ = ["ADDRESS", "CARD", "EMAIL", "PHONE", "luhn_ok", "redact_pii"]

EMAIL, PHONE, CARD, ADDRESS = "[EMAIL]", "[PHONE]", "[CARD]", "[ADDRESS]"

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])", re.ASCII)
# 13-19 digits, optionally grouped by single spaces or dashes; Luhn decides
_CARD = re.compile(r"(?<![\w.,-])\d(?:[ -]?\d){12,18}(?![\w,-]|\.\d)", re.ASCII)
_PHONE = re.compile(
    r"(?<![\w+.,/-])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +44 20 7946 0958, +1 (555) 123-4567
    r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"  # (555) 123-4567
    r"|0\d{2,4}[ .-]\d{3,4}[ .-]?\d{3,4}"  # 020 7946 0958, 030-1234-5678
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # 555-123-4567
    r"|1[3-9]\d{9}"  # a Chinese mobile
    r")(?![\w-]|[.,]\d)", re.ASCII)  # ASCII \w: a Chinese character next to a number is not part of it
_STREET_WORDS = (r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Terrace|Way|"
                 r"Close|Crescent|Square|Sq|Parkway|Pkwy|Highway|Hwy|Alley")
_ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][\w'.-]*\s+){1,4}(?:" + _STREET_WORDS + r")\b\.?"
    r"|[\u4e00-\u9fff]{1,8}(?:路|街|大道|巷|弄)\d{1,5}(?:号|號)")


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check every payment card number passes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return CARD if 13 <= len(digits) <= 19 and luhn_ok(digits) else m.group(0)


def redact_pii(text: str) -> str:
    """``text`` with e-mail addresses, card numbers, phone numbers and street addresses replaced by tags.

    Cards go before phones (a card's digit groups could look like a phone number), e-mails first (their
    digits are not a phone number)."""
    if not text:
        return text
    text = _EMAIL.sub(EMAIL, text)
    text = _CARD.sub(_card, text)
    text = _PHONE.sub(PHONE, text)
    return _ADDRESS.sub(ADDRESS, text)
