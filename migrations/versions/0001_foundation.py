"""Foundation: identity, audit ledger (append-only), scheduler, idempotency, notifications.

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 06:36:43.193679
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_checkpoint',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('head', sa.String(length=64), nullable=False),
    sa.Column('root', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.Column('frontier', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('size', name=op.f('audit_checkpoint_pkey'))
    )
    op.create_table('audit_entry',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=128), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload_sha256', sa.String(length=64), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('audit_entry_pkey'))
    )
    op.create_index(op.f('audit_entry_action_idx'), 'audit_entry', ['action'], unique=False)
    op.create_index(op.f('audit_entry_entity_idx'), 'audit_entry', ['entity'], unique=False)
    # the ledger is append-only: refuse UPDATE, DELETE and TRUNCATE for every role
    op.execute("""
        CREATE FUNCTION audit_entry_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_entry is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
    """)
    op.execute("CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry "
               "FOR EACH ROW EXECUTE FUNCTION audit_entry_refuse_change()")
    op.execute("CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
               "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_refuse_change()")
    op.create_table('idempotent_request',
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('body', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('owner', 'key', name=op.f('idempotent_request_pkey'))
    )
    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('window_started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('login_throttle_pkey'))
    )
    op.create_table('organisation',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('social_credit_code', sa.String(length=18), nullable=True),
    sa.Column('kind', sa.String(length=32), server_default='company', nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('organisation_pkey')),
    sa.UniqueConstraint('public_id', name=op.f('organisation_public_id_key')),
    sa.UniqueConstraint('social_credit_code', name=op.f('organisation_social_credit_code_key'))
    )
    op.create_table('scheduled_job',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('max_attempts', sa.Integer(), server_default='5', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('scheduled_job_pkey'))
    )
    op.create_index('scheduled_job_dedupe_key_pending_key', 'scheduled_job', ['dedupe_key'], unique=True, postgresql_where=sa.text("status = 'pending' AND dedupe_key IS NOT NULL"))
    op.create_index('scheduled_job_due_idx', 'scheduled_job', ['due_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_table('app_user',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('public_id', sa.String(length=16), nullable=False),
    sa.Column('organisation_id', sa.BigInteger(), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('roles', sa.ARRAY(sa.String(length=16)), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('sessions_revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('app_user_organisation_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('app_user_pkey')),
    sa.UniqueConstraint('public_id', name=op.f('app_user_public_id_key')),
    sa.UniqueConstraint('username', name=op.f('app_user_username_key'))
    )
    op.create_index(op.f('app_user_organisation_id_idx'), 'app_user', ['organisation_id'], unique=False)
    op.create_table('notification',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('notification_user_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('notification_pkey'))
    )
    op.create_index(op.f('notification_user_id_idx'), 'notification', ['user_id'], unique=False)
    op.create_table('refresh_token',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('family_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('refresh_token_user_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('refresh_token_pkey')),
    sa.UniqueConstraint('token_hash', name=op.f('refresh_token_token_hash_key'))
    )
    op.create_index(op.f('refresh_token_family_id_idx'), 'refresh_token', ['family_id'], unique=False)
    op.create_index(op.f('refresh_token_user_id_idx'), 'refresh_token', ['user_id'], unique=False)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_entry")
    op.execute("DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_entry")
    op.execute("DROP FUNCTION IF EXISTS audit_entry_refuse_change()")
    op.drop_index(op.f('refresh_token_user_id_idx'), table_name='refresh_token')
    op.drop_index(op.f('refresh_token_family_id_idx'), table_name='refresh_token')
    op.drop_table('refresh_token')
    op.drop_index(op.f('notification_user_id_idx'), table_name='notification')
    op.drop_table('notification')
    op.drop_index(op.f('app_user_organisation_id_idx'), table_name='app_user')
    op.drop_table('app_user')
    op.drop_index('scheduled_job_due_idx', table_name='scheduled_job', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('scheduled_job_dedupe_key_pending_key', table_name='scheduled_job', postgresql_where=sa.text("status = 'pending' AND dedupe_key IS NOT NULL"))
    op.drop_table('scheduled_job')
    op.drop_table('organisation')
    op.drop_table('login_throttle')
    op.drop_table('idempotent_request')
    op.drop_index(op.f('audit_entry_entity_idx'), table_name='audit_entry')
    op.drop_index(op.f('audit_entry_action_idx'), table_name='audit_entry')
    op.drop_table('audit_entry')
    op.drop_table('audit_checkpoint')
