"""audit: drop the type index (the last logged config hash lives in vault_meta)

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_audit_entries_type", table_name="audit_entries")


def downgrade() -> None:
    op.create_index("ix_audit_entries_type", "audit_entries", ["type"])
