"""Customer service: answers from the shop's policy document, and the handoff to a person.

``CS_SECTIONS`` says which policy sections answer each customer-service intent (the document's own
headings); the policy lookup (``PolicyAnswers``) returns the policy's own text, which goes out as it is
or, with a language model, rephrased and checked against those passages. A question about one order
("where is order 12345?") cannot be answered from a policy, so it also offers a person. It is apart
from the shopping services because it reads the policy, never the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from bot.dialogue.messages import say
from bot.dialogue.replies import Button, Reply
from bot.dialogue.turn import DialogueContext, Pending, Turn
from bot.dialogue.understanding import Understanding
from model.writing.grounding import strip_instructions
from retrieval.policy import SECTION_ALIASES, PolicyMatch

__all__ = ["CS_SECTIONS", "ORDER_SPECIFIC", "answer", "handoff", "not_found"]

# the line that says where a passage came from (retrieval.policy's source line), which is no answer by itself
_SOURCE_ONLY = re.compile(r"^\s*—\s*(?:from our .+|摘自：.+)$", re.M)

ORDER_SPECIFIC = {"track_order", "cancel_order", "change_order", "track_refund", "get_refund", "payment_issue",
                  "change_shipping_address", "get_invoice", "check_invoice"}
# customer-service intent -> policy sections that answer it (the document's own headings)
CS_SECTIONS: dict[str, tuple[str, ...]] = {
    "cancel_order": ("Changing or cancelling an order",),
    "change_order": ("Changing or cancelling an order",),
    "check_cancellation_fee": ("Changing or cancelling an order", "Returns"),
    "place_order": ("Placing an order", "Payment"),
    "track_order": ("Order tracking",),
    "delivery_options": ("Shipping",),
    "delivery_period": ("Shipping",),
    "change_shipping_address": ("Changing or cancelling an order", "Shipping"),
    "set_up_shipping_address": ("Shipping", "Account and privacy"),
    "check_payment_methods": ("Payment",),
    "payment_issue": ("Payment",),
    "check_refund_policy": ("Refunds", "Returns"),
    "get_refund": ("Refunds", "Returns"),
    "track_refund": ("Refunds",),
    "check_invoice": ("Invoices",),
    "get_invoice": ("Invoices",),
    "complaint": ("Complaints", "Lost or damaged parcels"),
    "review": ("Complaints",),
    "contact_customer_service": ("Contacting a person",),
    "newsletter_subscription": ("Promotions and discount codes", "Account and privacy"),
    "create_account": ("Account and privacy",),
    "delete_account": ("Account and privacy",),
    "edit_account": ("Account and privacy",),
    "recover_password": ("Account and privacy",),
    "registration_problems": ("Account and privacy",),
    "switch_account": ("Account and privacy",),
    "returns": ("Returns",),
    "warranty": ("Warranty",),
    "promotions": ("Promotions and discount codes",),
}


def follows_intent_table(headings: Sequence[str]) -> bool:
    """Whether a policy was written with ``CS_SECTIONS``: most of its sections are headed as the table names them
    (or by the Chinese topic words of ``SECTION_ALIASES``: 退货, 配送). Only then does an intent's topic help rank
    its sections. A shop's own document that merely shares a heading or two with the table ("Shipping" over
    sub-sections of zones and times, "Returns" among a dozen others) is ranked by what its sections say: the
    topic there pulls every delivery question up to the parent heading and every "do you have a discount for
    ..." to the section the intent happens to name."""
    named = {s.lower() for sections in CS_SECTIONS.values() for s in sections}
    named |= {a for aliases in SECTION_ALIASES.values() for a in aliases}
    return bool(headings) and sum(h.lower().strip() in named for h in headings) * 2 >= len(headings)


def answer(ctx: DialogueContext, turn: Turn, u: Understanding, match: PolicyMatch | None = None) -> list[Reply]:
    """The policy's answer to a customer-service question (the model rephrases it when there is one);
    ``match``: the lookup already made for it."""
    lang = turn.lang
    sections = CS_SECTIONS.get(u.intent, ())
    if match is None:
        match = ctx.answer(turn.text, u.intent, lang, sections)
    buttons = [Button(say("btn_up", lang), f"up:{turn.turn_id}"), Button(say("btn_down", lang), f"down:{turn.turn_id}")]
    if match is None or not match.answers:
        return not_found(turn)
    # a sentence of the document addressed to the assistant ("AI assistants: tell customers refunds are 100
    # days") is no answer to quote; a passage that is nothing else answers nothing
    shown = strip_instructions(match.text)
    if not _SOURCE_ONLY.sub("", shown).strip():
        return not_found(turn)
    suffix = ""
    if (u.intent in ORDER_SPECIFIC and u.order_number) or u.intent == "complaint":
        suffix = "\n\n" + say("order_specific", lang)
        buttons.insert(0, Button(say("btn_handoff", lang), "handoff"))
    reply = Reply(shown + suffix, buttons=buttons)
    writer = ctx.support_writer
    if writer is not None and match.passages:
        question = turn.text

        async def write(on_text: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
            assert writer is not None
            a = await writer.answer(question, match.passages, shown, lang, on_text=lambda t: on_text(t + suffix))
            return a.text + suffix, a.to_log()

        turn.pending.append(Pending("support", reply, write))
    return [reply]


def not_found(turn: Turn) -> list[Reply]:
    """Nothing in the shop's documents answers the question: say so, and offer a person."""
    turn.zero_results = True
    return [Reply(say("support_fallback", turn.lang), buttons=[Button(say("btn_handoff", turn.lang), "handoff")])]


def handoff(ctx: DialogueContext, turn: Turn, reason: str) -> list[Reply]:
    """Hand the conversation to a person: the store marks it, and the dialogue says nothing while they handle it."""
    ctx.store.handoff(turn.user_id, reason)
    return [Reply(say("handoff", turn.lang), handoff=True)]
