"""Search index of datasets: stemmed terms, embeddings, and the engine's full-text index
(SQLite: FTS5 table ``dataset_fts``; PostgreSQL: GIN-indexed tsvector columns); the
catalog's change counter ``catalog_state``.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``dataset_search`` and its full-text index (rows are filled when the catalog is
    next opened, by ``npfm.catalog.search_index.fill_missing``)."""
    op.create_table(
        "dataset_search",
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dataset.id"), primary_key=True),
        sa.Column("head", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary()),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False))
    state = op.create_table("catalog_state", sa.Column("id", sa.Integer(), primary_key=True),
                            sa.Column("generation", sa.BigInteger(), nullable=False))
    op.bulk_insert(state, [{"id": 1, "generation": 0}])
    if op.get_bind().dialect.name == "postgresql":
        for field in ("head", "body"):
            op.execute(f"ALTER TABLE dataset_search ADD COLUMN {field}_tsv tsvector "
                       f"GENERATED ALWAYS AS (to_tsvector('simple', {field})) STORED")
            op.execute(f"CREATE INDEX ix_dataset_search_{field}_tsv ON dataset_search "
                       f"USING gin ({field}_tsv)")
    else:
        op.execute("CREATE VIRTUAL TABLE dataset_fts USING fts5(head, body, "
                   "tokenize = 'unicode61')")


def downgrade() -> None:
    """Remove what ``upgrade`` added."""
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE dataset_fts")
    op.drop_table("dataset_search")
    op.drop_table("catalog_state")
