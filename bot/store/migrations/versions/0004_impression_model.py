"""Which model version ranked each impression (the ranker for searches, the recommender for recommendations).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("impressions") as batch:
        batch.add_column(sa.Column("model_version", sa.String(120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("impressions") as batch:
        batch.drop_column("model_version")
