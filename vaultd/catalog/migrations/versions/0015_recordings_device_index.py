"""recordings: one camera's recordings, and all of them, in the lists' order (start, id)

A list filtered by camera walked the unit's (or the whole catalog's) time
index and read every row to compare its camera: about 4,000 rows for one
page of a camera among 40 (benchmarks/api.py). The index replaces the
plain one on device_serial, which is its prefix; (recorded_start, id)
replaces the one on recorded_start so that a page of the whole catalog
(legal, auditors, the local owner) needs no sort of equal start times.

Revision ID: 0015
Revises: 0014
"""
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_recordings_device_start", "recordings", ["device_serial", "recorded_start", "id"])
    op.drop_index("ix_recordings_device_serial", table_name="recordings")
    op.create_index("ix_recordings_start_id", "recordings", ["recorded_start", "id"])
    op.drop_index("ix_recordings_recorded_start", table_name="recordings")


def downgrade() -> None:
    op.create_index("ix_recordings_recorded_start", "recordings", ["recorded_start"])
    op.drop_index("ix_recordings_start_id", table_name="recordings")
    op.create_index("ix_recordings_device_serial", "recordings", ["device_serial"])
    op.drop_index("ix_recordings_device_start", table_name="recordings")
