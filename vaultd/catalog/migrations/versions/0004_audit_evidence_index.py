"""audit: index (evidence_id, idx) so the previous entry about a recording is one seek

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_entries_evidence_idx", "audit_entries", ["evidence_id", "idx"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_evidence_idx", table_name="audit_entries")
