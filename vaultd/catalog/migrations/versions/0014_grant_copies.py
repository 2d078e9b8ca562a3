"""grant copies (#16.10): one use of a grant is one copy of one recording

Uses were one grant-wide counter (grants.uses_left), spent by each read. They
are now counted per recording in grant_copies. A grant that had spent k uses
keeps k spent uses against EACH of its recordings (which recording a use went
to was not kept): never more than was granted.

Revision ID: 0014
Revises: 0013
"""
import json

from alembic import op
import sqlalchemy as sa

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dt = sa.DateTime(timezone=True)
    op.create_table(
        "grant_copies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("grant_id", sa.String(16), sa.ForeignKey("grants.id"), nullable=False),
        sa.Column("recording_id", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("export_id", sa.String(32)),
        sa.Column("delivered", sa.Text, nullable=False),
        sa.Column("reading", sa.Text, nullable=False),
        sa.Column("started_at", dt, nullable=False),
        sa.Column("last_at", dt, nullable=False),
    )
    op.create_index("ix_grant_copies_grant", "grant_copies", ["grant_id", "recording_id", "state"])
    op.create_index("ix_grant_copies_export", "grant_copies", ["export_id"])
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, recording_ids, uses_total, uses_left, created_at FROM grants "
                                "WHERE uses_left < uses_total")).all()
    legacy = [{"grant_id": g.id, "recording_id": rec, "kind": "legacy", "state": "complete", "export_id": None,
               "delivered": "[]", "reading": "[]", "started_at": g.created_at, "last_at": g.created_at}
              for g in rows for rec in json.loads(g.recording_ids) for _k in range(g.uses_total - g.uses_left)]
    if legacy:  # as stored (created_at copied unchanged, whatever the dialect's format)
        conn.execute(sa.text(
            "INSERT INTO grant_copies (grant_id, recording_id, kind, state, export_id, delivered, reading, "
            "started_at, last_at) VALUES (:grant_id, :recording_id, :kind, :state, :export_id, :delivered, "
            ":reading, :started_at, :last_at)"), legacy)


def downgrade() -> None:
    op.drop_index("ix_grant_copies_export", "grant_copies")
    op.drop_index("ix_grant_copies_grant", "grant_copies")
    op.drop_table("grant_copies")
