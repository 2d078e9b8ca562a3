"""cases, labels, retention, holds, purge batches (#6)

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dt = sa.DateTime(timezone=True)
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(128), nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("unit", sa.String(128)),
        sa.Column("handler", sa.String(128)),
        sa.Column("party", sa.Text),
        sa.Column("confidentiality", sa.String(16), nullable=False),
        sa.Column("act_ended_at", dt),
        sa.Column("opened_at", dt, nullable=False),
        sa.Column("opened_by", sa.String(160), nullable=False),
        sa.Column("closed_at", dt),
        sa.Column("closed_by", sa.String(160)),
        sa.Column("archived_at", dt),
        sa.Column("archived_by", sa.String(160)),
        sa.Column("file_keep_months", sa.Integer),
    )
    op.create_index("ix_cases_unit", "cases", ["unit"])
    op.create_table(
        "case_recordings",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), primary_key=True),
        sa.Column("linked_at", dt, nullable=False),
        sa.Column("linked_by", sa.String(160), nullable=False),
    )
    op.create_index("ix_case_recordings_recording_id", "case_recordings", ["recording_id"])
    op.create_table(
        "labels",
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), primary_key=True),
        sa.Column("case_number", sa.String(128)),
        sa.Column("party", sa.Text),
        sa.Column("handler", sa.String(128)),
        sa.Column("making_method", sa.Text),
        sa.Column("maker", sa.String(128)),
        sa.Column("making_time", dt),
        sa.Column("proves", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("labelled_at", dt),
        sa.Column("updated_at", dt, nullable=False),
        sa.Column("updated_by", sa.String(160), nullable=False),
    )
    op.create_table(
        "retention_classes",
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), primary_key=True),
        sa.Column("class_name", sa.String(64), nullable=False),
        sa.Column("set_at", dt, nullable=False),
        sa.Column("set_by", sa.String(160), nullable=False),
        sa.Column("change_id", sa.String(16)),
    )
    op.create_table(
        "class_changes",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), nullable=False),
        sa.Column("from_class", sa.String(64), nullable=False),
        sa.Column("to_class", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(160), nullable=False),
        sa.Column("requested_at", dt, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(160)),
        sa.Column("decided_at", dt),
    )
    op.create_index("ix_class_changes_recording_id", "class_changes", ["recording_id"])
    op.create_table(
        "holds",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id")),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id")),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("set_by", sa.String(160), nullable=False),
        sa.Column("set_at", dt, nullable=False),
        sa.Column("released_by", sa.String(160)),
        sa.Column("released_at", dt),
        sa.Column("release_note", sa.Text),
    )
    op.create_index("ix_holds_recording_id", "holds", ["recording_id"])
    op.create_index("ix_holds_case_id", "holds", ["case_id"])
    op.create_table(
        "purge_batches",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("created_at", dt, nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("purged_at", dt),
        sa.Column("purged_by", sa.String(160)),
    )
    op.create_table(
        "purge_items",
        sa.Column("batch_id", sa.String(16), sa.ForeignKey("purge_batches.id"), primary_key=True),
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), primary_key=True),
        sa.Column("class_name", sa.String(64), nullable=False),
        sa.Column("expires_at", dt, nullable=False),
        sa.Column("why", sa.Text, nullable=False),
    )
    op.create_index("ix_purge_items_recording_id", "purge_items", ["recording_id"])
    op.create_table(
        "purge_approvals",
        sa.Column("batch_id", sa.String(16), sa.ForeignKey("purge_batches.id"), primary_key=True),
        sa.Column("approver", sa.String(160), primary_key=True),
        sa.Column("approved_at", dt, nullable=False),
    )
    op.create_table(
        "tombstones",
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("batch_id", sa.String(16), sa.ForeignKey("purge_batches.id"), nullable=False),
        sa.Column("class_name", sa.String(64), nullable=False),
        sa.Column("purged_at", dt, nullable=False),
        sa.Column("purged_by", sa.String(160), nullable=False),
        sa.Column("approvers", sa.Text, nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("audit_index", sa.BigInteger),
    )
    op.create_index("ix_tombstones_purged_at", "tombstones", ["purged_at"])


def downgrade() -> None:
    op.drop_index("ix_tombstones_purged_at", table_name="tombstones")
    op.drop_table("tombstones")
    op.drop_table("purge_approvals")
    op.drop_index("ix_purge_items_recording_id", table_name="purge_items")
    op.drop_table("purge_items")
    op.drop_table("purge_batches")
    op.drop_index("ix_holds_case_id", table_name="holds")
    op.drop_index("ix_holds_recording_id", table_name="holds")
    op.drop_table("holds")
    op.drop_index("ix_class_changes_recording_id", table_name="class_changes")
    op.drop_table("class_changes")
    op.drop_table("retention_classes")
    op.drop_table("labels")
    op.drop_index("ix_case_recordings_recording_id", table_name="case_recordings")
    op.drop_table("case_recordings")
    op.drop_index("ix_cases_unit", table_name="cases")
    op.drop_table("cases")
