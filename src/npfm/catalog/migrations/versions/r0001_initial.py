"""Initial catalog: datasets, files, replicas, sites, geometries, checkpoints, results,
API tokens and provenance edges.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

SHA = sa.String(64)
PATH = sa.String(1024)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), primary_key=True)


def upgrade() -> None:
    """Create every table of the first catalog schema."""
    op.create_table(
        "api_token", _id(), sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("token_sha256", SHA, nullable=False, unique=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False))
    op.create_table(
        "checkpoint", _id(), sa.Column("run_path", PATH, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("model_sha256", SHA, nullable=False, unique=True),
        sa.Column("config", sa.JSON(), nullable=False))
    op.create_table(
        "dataset", _id(), sa.Column("name", sa.String(256), nullable=False),
        sa.Column("title", sa.String(1024), nullable=False),
        sa.Column("identifier", sa.String(512), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("license", sa.String(512), nullable=False),
        sa.Column("creators", sa.JSON(), nullable=False),
        sa.Column("created", sa.String(64), nullable=False),
        sa.Column("path", PATH, nullable=False),
        sa.Column("manifest_sha256", SHA, nullable=False, unique=True),
        sa.Column("description", sa.String(8192), nullable=False),
        sa.Column("facility", sa.String(128)), sa.Column("experiment", sa.String(128)),
        sa.Column("collision_system", sa.String(64)), sa.Column("energy_gev", sa.Float()),
        sa.Column("detector", sa.String(128)), sa.Column("data_level", sa.String(64)),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False))
    for column in ("collision_system", "data_level", "detector", "experiment", "facility"):
        op.create_index(f"ix_dataset_{column}", "dataset", [column])
    op.create_table(
        "geometry", _id(), sa.Column("geometry_id", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("experiment", sa.String(128), nullable=False),
        sa.Column("path", PATH, nullable=False),
        sa.Column("sha256", SHA, nullable=False, unique=True))
    op.create_table(
        "provenance_edge", _id(), sa.Column("source_kind", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("target_kind", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(128), nullable=False),
        sa.Column("relation", sa.String(64), nullable=False),
        sa.UniqueConstraint("source_kind", "source_id", "target_kind", "target_id",
                            "relation", name="uq_edge"))
    op.create_table(
        "site", _id(), sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("url_prefix", sa.String(2048), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False))
    op.create_table(
        "benchmark_result", _id(), sa.Column("name", sa.String(256), nullable=False),
        sa.Column("task", sa.String(256), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False), sa.Column("lo", sa.Float()),
        sa.Column("hi", sa.Float()), sa.Column("seeds", sa.JSON(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), sa.ForeignKey("checkpoint.id")),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dataset.id")),
        sa.Column("report_path", PATH), sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False))
    op.create_table(
        "file", _id(),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("path", PATH, nullable=False), sa.Column("sha256", SHA, nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False))
    op.create_index("ix_file_dataset_id", "file", ["dataset_id"])
    op.create_index("ix_file_sha256", "file", ["sha256"])
    op.create_table(
        "replica", _id(),
        sa.Column("file_id", sa.Integer(), sa.ForeignKey("file.id"), nullable=False),
        sa.Column("site", sa.String(256), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("adler32", sa.String(8)), sa.Column("sha256", SHA),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("checked", sa.DateTime(timezone=True)))
    op.create_index("ix_replica_file_id", "replica", ["file_id"])
    op.create_index("ix_replica_site", "replica", ["site"])


def downgrade() -> None:
    """Drop every table."""
    for table in ("replica", "file", "benchmark_result", "site", "provenance_edge",
                  "geometry", "dataset", "checkpoint", "api_token"):
        op.drop_table(table)
