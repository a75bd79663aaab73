"""Searches the shop owner marked handled in the console's demand gaps, so their theme stays hidden.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handled_gaps",
        sa.Column("query", sa.String(500), primary_key=True),
        sa.Column("theme", sa.Text(), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_by", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("handled_gaps")
