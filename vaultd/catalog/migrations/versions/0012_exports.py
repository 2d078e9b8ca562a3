"""signed exports (#8)

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dt = sa.DateTime(timezone=True)
    op.create_table(
        "exports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", dt, nullable=False),
        sa.Column("finished_at", dt),
        sa.Column("maker", sa.String(160), nullable=False),
        sa.Column("grant_id", sa.String(16), nullable=False),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("approver", sa.String(128), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("case_number", sa.String(128)),
        sa.Column("recording_ids", sa.Text, nullable=False),
        sa.Column("out_path", sa.Text, nullable=False),
        sa.Column("packages", sa.Text, nullable=False),
        sa.Column("payload_bytes", sa.BigInteger, nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger),
        sa.Column("entry_index", sa.BigInteger),
        sa.Column("problem", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("exports")
