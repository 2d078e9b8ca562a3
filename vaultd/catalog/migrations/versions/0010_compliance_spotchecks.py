"""compliance: trips, scrub schedule, spot checks (#6)

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dt = sa.DateTime(timezone=True)
    op.create_table(
        "trips",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("officer_number", sa.String(32)),
        sa.Column("device_serial", sa.String(64)),
        sa.Column("left_at", dt, nullable=False),
        sa.Column("returned_at", dt),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.String(160), nullable=False),
        sa.Column("recorded_at", dt, nullable=False),
    )
    op.create_index("ix_trips_officer_number", "trips", ["officer_number"])
    op.create_index("ix_trips_device_serial", "trips", ["device_serial"])
    op.create_table(
        "late_reasons",
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("entered_by", sa.String(160), nullable=False),
        sa.Column("entered_at", dt, nullable=False),
    )
    op.create_table(
        "interruption_notes",
        sa.Column("after_id", sa.String(16), sa.ForeignKey("recordings.id"), primary_key=True),
        sa.Column("before_id", sa.String(16), sa.ForeignKey("recordings.id"), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("noted_by", sa.String(160), nullable=False),
        sa.Column("noted_at", dt, nullable=False),
    )
    op.create_table(
        "scrub_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("round_started_at", dt, nullable=False),
        sa.Column("round_finished_at", dt),
        sa.Column("cursor_at", dt),
        sa.Column("cursor_id", sa.String(16)),
        sa.Column("files_done", sa.Integer, nullable=False),
        sa.Column("bytes_done", sa.BigInteger, nullable=False),
        sa.Column("updated_at", dt, nullable=False),
    )
    op.create_index("ix_recordings_ingested_id", "recordings", ["ingested_at", "id"])
    op.create_table(
        "spot_checks",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("drawn_at", dt, nullable=False),
        sa.Column("drawn_by", sa.String(160), nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("percent", sa.Float, nullable=False),
        sa.Column("unit", sa.String(128)),
        sa.Column("since", dt),
        sa.Column("until", dt),
        sa.Column("population", sa.Integer, nullable=False),
        sa.Column("sample_size", sa.Integer, nullable=False),
    )
    op.create_table(
        "spot_check_items",
        sa.Column("check_id", sa.String(16), sa.ForeignKey("spot_checks.id"), primary_key=True),
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "spot_check_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("check_id", sa.String(16), sa.ForeignKey("spot_checks.id"), nullable=False),
        sa.Column("recording_id", sa.String(16), sa.ForeignKey("recordings.id"), nullable=False),
        sa.Column("item", sa.String(32), nullable=False),
        sa.Column("result", sa.String(8), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("found_by", sa.String(160), nullable=False),
        sa.Column("found_at", dt, nullable=False),
    )
    op.create_index("ix_spot_check_findings_check_id", "spot_check_findings", ["check_id"])


def downgrade() -> None:
    op.drop_index("ix_spot_check_findings_check_id", table_name="spot_check_findings")
    op.drop_table("spot_check_findings")
    op.drop_table("spot_check_items")
    op.drop_table("spot_checks")
    op.drop_index("ix_recordings_ingested_id", table_name="recordings")
    op.drop_table("scrub_state")
    op.drop_table("interruption_notes")
    op.drop_table("late_reasons")
    op.drop_index("ix_trips_device_serial", table_name="trips")
    op.drop_index("ix_trips_officer_number", table_name="trips")
    op.drop_table("trips")
