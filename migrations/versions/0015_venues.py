"""Evaluation venues (统一场地管理): sites (trading centres), rooms, places (席位) and room bookings that the
database keeps from overlapping; evaluation sessions (评标会议) whose main venue (主场) and sub-venues (副场)
are bookings.

The exclusion constraint needs no btree_gist: the room id goes in as a one-element int4range, which core GiST
compares with `=`, beside the booking's tstzrange (a stored generated column) compared with `&&`. Cancelled
bookings stay on record outside the constraint.

Revision ID: 0015
Revises: 0010
Create Date: 2026-12-01 20:10:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0015'
down_revision = '0010'
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column('status', sa.String(16), server_default='active', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        'venue_site',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('public_id', sa.String(16), nullable=False),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('region_code', sa.String(6), nullable=False),
        sa.Column('address', sa.String(200), server_default='', nullable=False),
        *_timestamps(),
        sa.CheckConstraint("status IN ('active', 'retired')", name=op.f('venue_site_status_known_check')),
        sa.PrimaryKeyConstraint('id', name=op.f('venue_site_pkey')),
        sa.UniqueConstraint('public_id', name=op.f('venue_site_public_id_key')),
    )
    op.create_index(op.f('venue_site_region_code_idx'), 'venue_site', ['region_code'])
    op.create_index('venue_site_active_name_idx', 'venue_site', ['name'], unique=True,
                    postgresql_where=sa.text("status = 'active'"))

    op.create_table(
        'venue_room',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('public_id', sa.String(16), nullable=False),
        sa.Column('site_id', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('capacity', sa.Integer(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("status IN ('active', 'retired')", name=op.f('venue_room_status_known_check')),
        sa.CheckConstraint('capacity IS NULL OR capacity > 0', name=op.f('venue_room_capacity_positive_check')),
        sa.ForeignKeyConstraint(['site_id'], ['venue_site.id'], name=op.f('venue_room_site_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('venue_room_pkey')),
        sa.UniqueConstraint('public_id', name=op.f('venue_room_public_id_key')),
    )
    op.create_index(op.f('venue_room_site_id_idx'), 'venue_room', ['site_id'])
    op.create_index('venue_room_site_id_active_name_idx', 'venue_room', ['site_id', 'name'], unique=True,
                    postgresql_where=sa.text("status = 'active'"))

    op.create_table(
        'venue_place',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('public_id', sa.String(16), nullable=False),
        sa.Column('room_id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(32), nullable=False),
        sa.Column('camera_position', sa.Boolean(), server_default=sa.text('false'), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("status IN ('active', 'retired')", name=op.f('venue_place_status_known_check')),
        sa.ForeignKeyConstraint(['room_id'], ['venue_room.id'], name=op.f('venue_place_room_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('venue_place_pkey')),
        sa.UniqueConstraint('public_id', name=op.f('venue_place_public_id_key')),
    )
    op.create_index(op.f('venue_place_room_id_idx'), 'venue_place', ['room_id'])
    op.create_index('venue_place_room_id_active_label_idx', 'venue_place', ['room_id', 'label'], unique=True,
                    postgresql_where=sa.text("status = 'active'"))
    op.create_index('venue_place_room_id_camera_idx', 'venue_place', ['room_id'], unique=True,
                    postgresql_where=sa.text("camera_position AND status = 'active'"))

    op.create_table(
        'evaluation_session',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('public_id', sa.String(16), nullable=False),
        sa.Column('tender_id', sa.BigInteger(), nullable=False),
        sa.Column('lot_id', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(16), server_default='scheduled', nullable=False),
        sa.Column('suspended_from', sa.String(16), nullable=True),
        sa.Column('created_by_id', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('scheduled', 'check_in', 'in_progress', 'scoring_closed', 'signing', "
                           "'closed', 'suspended', 'aborted')", name=op.f('evaluation_session_status_known_check')),
        sa.CheckConstraint("(status = 'suspended') = (suspended_from IS NOT NULL)",
                           name=op.f('evaluation_session_suspended_from_set_check')),
        sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('evaluation_session_tender_id_fkey')),
        sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('evaluation_session_lot_id_fkey')),
        sa.ForeignKeyConstraint(['created_by_id'], ['app_user.id'],
                                name=op.f('evaluation_session_created_by_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('evaluation_session_pkey')),
        sa.UniqueConstraint('public_id', name=op.f('evaluation_session_public_id_key')),
    )
    op.create_index(op.f('evaluation_session_tender_id_idx'), 'evaluation_session', ['tender_id'])
    op.create_index(op.f('evaluation_session_lot_id_idx'), 'evaluation_session', ['lot_id'])
    op.create_index('evaluation_session_live_lot_idx', 'evaluation_session', ['lot_id'], unique=True,
                    postgresql_where=sa.text("status NOT IN ('closed', 'aborted')"))

    op.create_table(
        'room_booking',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('public_id', sa.String(16), nullable=False),
        sa.Column('room_id', sa.Integer(), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('during', postgresql.TSTZRANGE(),
                  sa.Computed("tstzrange(starts_at, ends_at, '[)')", persisted=True), nullable=False),
        sa.Column('status', sa.String(16), server_default='confirmed', nullable=False),
        sa.Column('tender_id', sa.BigInteger(), nullable=True),
        sa.Column('lot_id', sa.BigInteger(), nullable=True),
        sa.Column('evaluation_session_id', sa.BigInteger(), nullable=True),
        sa.Column('venue_role', sa.String(8), nullable=True),
        sa.Column('label', sa.String(200), nullable=False),
        sa.Column('booked_by_id', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cancelled_by_id', sa.BigInteger(), nullable=True),
        sa.Column('cancel_reason', sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('confirmed', 'cancelled')", name=op.f('room_booking_status_known_check')),
        sa.CheckConstraint('ends_at > starts_at', name=op.f('room_booking_ends_after_start_check')),
        sa.CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)",
                           name=op.f('room_booking_cancelled_when_stamped_check')),
        sa.CheckConstraint("venue_role IS NULL OR venue_role IN ('main', 'sub')",
                           name=op.f('room_booking_venue_role_known_check')),
        sa.CheckConstraint('(evaluation_session_id IS NULL) = (venue_role IS NULL)',
                           name=op.f('room_booking_venue_role_with_session_check')),
        sa.ForeignKeyConstraint(['room_id'], ['venue_room.id'], name=op.f('room_booking_room_id_fkey')),
        sa.ForeignKeyConstraint(['evaluation_session_id'], ['evaluation_session.id'],
                                name=op.f('room_booking_evaluation_session_id_fkey')),
        sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], name=op.f('room_booking_tender_id_fkey')),
        sa.ForeignKeyConstraint(['lot_id'], ['lot.id'], name=op.f('room_booking_lot_id_fkey')),
        sa.ForeignKeyConstraint(['booked_by_id'], ['app_user.id'], name=op.f('room_booking_booked_by_id_fkey')),
        sa.ForeignKeyConstraint(['cancelled_by_id'], ['app_user.id'],
                                name=op.f('room_booking_cancelled_by_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('room_booking_pkey')),
        sa.UniqueConstraint('public_id', name=op.f('room_booking_public_id_key')),
    )
    op.create_index(op.f('room_booking_tender_id_idx'), 'room_booking', ['tender_id'])
    op.create_index('room_booking_room_id_starts_at_idx', 'room_booking', ['room_id', 'starts_at'])
    op.create_index(op.f('room_booking_evaluation_session_id_idx'), 'room_booking', ['evaluation_session_id'])
    op.create_index('room_booking_session_main_idx', 'room_booking', ['evaluation_session_id'], unique=True,
                    postgresql_where=sa.text("venue_role = 'main'"))
    op.execute(
        "ALTER TABLE room_booking ADD CONSTRAINT room_booking_no_overlap EXCLUDE USING gist "
        "(int4range(room_id, room_id, '[]') WITH =, during WITH &&) WHERE (status = 'confirmed')")


def downgrade() -> None:
    op.drop_table('room_booking')
    op.drop_table('evaluation_session')
    op.drop_table('venue_place')
    op.drop_table('venue_room')
    op.drop_table('venue_site')
