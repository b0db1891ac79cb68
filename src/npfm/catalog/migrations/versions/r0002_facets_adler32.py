"""Multi-valued search facets (dataset_facet) and the adler32 checksum of a file.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``dataset_facet`` and ``file.adler32`` (existing rows get NULL)."""
    op.create_table(
        "dataset_facet", sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("facet", sa.String(32), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.UniqueConstraint("dataset_id", "facet", "value", name="uq_facet"))
    for column in ("dataset_id", "facet", "value"):
        op.create_index(f"ix_dataset_facet_{column}", "dataset_facet", [column])
    with op.batch_alter_table("file") as batch:
        batch.add_column(sa.Column("adler32", sa.String(8)))


def downgrade() -> None:
    """Remove what ``upgrade`` added."""
    with op.batch_alter_table("file") as batch:
        batch.drop_column("adler32")
    op.drop_table("dataset_facet")
