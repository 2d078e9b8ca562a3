"""recordings: indexes matching the access scopes' queries (unit / officer, in time order)

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_recordings_unit_start", "recordings", ["unit", "recorded_start", "id"])
    op.create_index("ix_recordings_officer_start", "recordings", ["officer_id", "recorded_start", "id"])


def downgrade() -> None:
    op.drop_index("ix_recordings_officer_start", table_name="recordings")
    op.drop_index("ix_recordings_unit_start", table_name="recordings")
