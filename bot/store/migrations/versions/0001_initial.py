"""Initial schema: users, conversation state, turns, impressions, feedback, handoffs.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "users",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("external_id", sa.String(160), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("last_seen_at", ts, nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("handed_over", sa.Boolean(), nullable=False),
        sa.Column("handed_over_at", ts, nullable=True),
        sa.Column("handoff_reason", sa.Text(), nullable=True),
    )
    op.create_table(
        "conversation_state",
        sa.Column("user_id", sa.String(200), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", ts, nullable=False),
    )
    op.create_table(
        "turns",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(200), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("text_in", sa.Text(), nullable=False),
        sa.Column("text_out", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("slots", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("model_versions", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_turns_user_created", "turns", ["user_id", "created_at"])
    op.create_table(
        "impressions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("turn_id", sa.String(32), sa.ForeignKey("turns.id"), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("sku", sa.String(200), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("created_at", ts, nullable=False),
    )
    op.create_index("ix_impressions_turn_id", "impressions", ["turn_id"])
    op.create_index("ix_impressions_sku", "impressions", ["sku"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("turn_id", sa.String(32), nullable=True),
        sa.Column("sku", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", ts, nullable=False),
    )
    op.create_index("ix_feedback_user_id", "feedback", ["user_id"])
    op.create_index("ix_feedback_sku", "feedback", ["sku"])
    op.create_table(
        "handoffs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("released_at", ts, nullable=True),
        sa.Column("released_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_handoffs_user_id", "handoffs", ["user_id"])


def downgrade() -> None:
    for name in ("handoffs", "feedback", "impressions", "turns", "conversation_state", "users"):
        op.drop_table(name)
