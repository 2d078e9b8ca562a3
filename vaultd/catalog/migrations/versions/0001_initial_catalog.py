"""initial catalog: sessions, recordings, sightings, file events, intents, scrubs

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 16:28:03.113509
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('ingest_intents',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', 'session_id')
    )
    op.create_table('ingest_sessions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('device_serial', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('vault_meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('file_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=False),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('name_raw', sa.LargeBinary(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['ingest_sessions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('file_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_file_events_session_id'), ['session_id'], unique=False)

    op.create_table('recordings',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('original_name', sa.Text(), nullable=False),
    sa.Column('original_name_raw', sa.LargeBinary(), nullable=False),
    sa.Column('name_oddities', sa.Text(), nullable=False),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('media_type', sa.String(length=8), nullable=False),
    sa.Column('device_serial', sa.String(length=64), nullable=True),
    sa.Column('device_model', sa.String(length=128), nullable=True),
    sa.Column('officer_id', sa.String(length=64), nullable=True),
    sa.Column('recorded_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('time_source', sa.String(length=16), nullable=False),
    sa.Column('clock_offset_s', sa.Float(), nullable=True),
    sa.Column('time_flags', sa.Text(), nullable=False),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ingest_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('video_codec', sa.String(length=32), nullable=True),
    sa.Column('audio_codec', sa.String(length=32), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('damaged', sa.Boolean(), nullable=False),
    sa.Column('damage_reasons', sa.Text(), nullable=False),
    sa.Column('important', sa.Boolean(), nullable=False),
    sa.Column('making_method', sa.Text(), nullable=False),
    sa.Column('maker', sa.String(length=128), nullable=True),
    sa.Column('ingest_session', sa.String(length=32), nullable=False),
    sa.Column('extra', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['ingest_session'], ['ingest_sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256')
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recordings_device_serial'), ['device_serial'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_officer_id'), ['officer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_recorded_start'), ['recorded_start'], unique=False)

    op.create_table('scrub_results',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('recording_id', sa.String(length=16), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('problem', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('scrub_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scrub_results_recording_id'), ['recording_id'], unique=False)

    op.create_table('sightings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('recording_id', sa.String(length=16), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=False),
    sa.Column('device_serial', sa.String(length=64), nullable=True),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('name_raw', sa.LargeBinary(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('mtime', sa.DateTime(timezone=True), nullable=True),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('wiped_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ),
    sa.ForeignKeyConstraint(['session_id'], ['ingest_sessions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sightings_recording_id'), ['recording_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('sightings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sightings_recording_id'))

    op.drop_table('sightings')
    with op.batch_alter_table('scrub_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scrub_results_recording_id'))

    op.drop_table('scrub_results')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recordings_recorded_start'))
        batch_op.drop_index(batch_op.f('ix_recordings_officer_id'))
        batch_op.drop_index(batch_op.f('ix_recordings_device_serial'))

    op.drop_table('recordings')
    with op.batch_alter_table('file_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_file_events_session_id'))

    op.drop_table('file_events')
    op.drop_table('vault_meta')
    op.drop_table('ingest_sessions')
    op.drop_table('ingest_intents')

