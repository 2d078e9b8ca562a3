"""previews and the preview job queue (#7)

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dt = sa.DateTime(timezone=True)
    op.create_table(
        "previews",
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("main_file", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("original_sha256", sa.String(64), nullable=False),
        sa.Column("tools", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("incomplete", sa.Boolean, nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
        sa.Column("made_at", dt, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_table(
        "preview_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), nullable=False, unique=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", dt, nullable=False),
        sa.Column("first_part", sa.Boolean, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("requested_by", sa.String(160), nullable=False),
        sa.Column("created_at", dt, nullable=False),
        sa.Column("updated_at", dt, nullable=False),
        sa.Column("started_at", dt),
        sa.Column("worker", sa.String(64)),
    )
    op.create_index("ix_preview_jobs_next", "preview_jobs", ["state", "priority", "not_before", "id"])


def downgrade() -> None:
    op.drop_index("ix_preview_jobs_next", table_name="preview_jobs")
    op.drop_table("preview_jobs")
    op.drop_table("previews")
