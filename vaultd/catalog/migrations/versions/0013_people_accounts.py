"""people and accounts (#16, #17): display names, roles awaiting approval,
how a token came to be, and the summaries of authentication floods

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dt = sa.DateTime(timezone=True)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("display_name", sa.String(128)))
        batch.add_column(sa.Column("pending_roles", sa.Text))
        batch.add_column(sa.Column("pending_by", sa.String(160)))
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("origin", sa.String(16)))
    with op.batch_alter_table("auth_failures") as batch:
        batch.create_index("ix_auth_failures_source", ["source"])
    op.create_table(
        "auth_noise",
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("window_start", dt, nullable=False),
        sa.Column("last_at", dt, nullable=False),
        sa.Column("suppressed", sa.Integer, nullable=False),
        sa.Column("names", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auth_noise")
    with op.batch_alter_table("auth_failures") as batch:
        batch.drop_index("ix_auth_failures_source")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("origin")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("pending_by")
        batch.drop_column("pending_roles")
        batch.drop_column("display_name")
