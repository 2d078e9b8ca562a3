"""audit: drop indexes every append pays for but no query needs

(evidence_id) is covered by (evidence_id, idx); entries are in time order, so
a time filter needs no index of its own; filtering by actor is an auditor's
occasional query and may scan. Fewer pages per append to fsync.

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_audit_entries_evidence_id", table_name="audit_entries")
    op.drop_index("ix_audit_entries_at", table_name="audit_entries")
    op.drop_index("ix_audit_entries_actor", table_name="audit_entries")


def downgrade() -> None:
    op.create_index("ix_audit_entries_evidence_id", "audit_entries", ["evidence_id"])
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])
    op.create_index("ix_audit_entries_actor", "audit_entries", ["actor"])
