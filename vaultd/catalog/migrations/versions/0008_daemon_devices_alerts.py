"""daemon: devices, docking, alerts (#5)

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True)),
        sa.Column("cleared_by", sa.String(128)),
        sa.Column("clear_note", sa.Text),
    )
    op.create_index("ix_alerts_open", "alerts", ["cleared_at", "kind", "subject"])
    dt = sa.DateTime(timezone=True)
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128)),
        sa.Column("usb_id", sa.String(9)),
        sa.Column("usb_serial", sa.String(128)),
        sa.Column("driver", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen_at", dt, nullable=False),
        sa.Column("enrolled_at", dt),
        sa.Column("enrolled_by", sa.String(128)),
        sa.Column("retired_at", dt),
        sa.Column("retired_by", sa.String(128)),
        sa.Column("last_docked_at", dt),
        sa.Column("last_port", sa.String(256)),
        sa.Column("clock_offset_s", sa.Float),
        sa.Column("clock_read_at", dt),
        sa.Column("battery_percent", sa.Integer),
        sa.Column("storage_free_bytes", sa.BigInteger),
        sa.Column("storage_total_bytes", sa.BigInteger),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_devices_serial", "devices", ["serial"])
    op.create_table(
        "docks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id")),
        sa.Column("serial", sa.String(64)),
        sa.Column("port", sa.String(256)),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("docked_at", dt, nullable=False),
        sa.Column("undocked_at", dt),
        sa.Column("session_id", sa.String(32)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_docks_device_id", "docks", ["device_id"])
    op.create_index("ix_docks_docked_at", "docks", ["docked_at"])


def downgrade() -> None:
    op.drop_table("docks")
    op.drop_table("devices")
    op.drop_index("ix_alerts_open", table_name="alerts")
    op.drop_table("alerts")
