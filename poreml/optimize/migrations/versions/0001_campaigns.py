"""The campaigns table: one row per campaign, its state as one JSON document.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``campaigns`` (name unique; config text; state JSON; revision; timestamps)."""
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config_text", sa.Text, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )


def downgrade() -> None:
    """Drop ``campaigns`` (and every campaign in it)."""
    op.drop_table("campaigns")
