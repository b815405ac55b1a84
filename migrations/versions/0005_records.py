"""Records: archived signed PDFs and their signature revisions; sealed records and revisions are immutable.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 07:07:49.785881
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('record',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('record_no', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('entity', sa.String(length=128), nullable=False),
    sa.Column('audience', sa.String(length=16), server_default='public', nullable=False),
    sa.Column('status', sa.String(length=16), server_default='signing', nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=200), nullable=False),
    sa.Column('signers', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('checkpoint_size', sa.BigInteger(), nullable=True),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('record_pkey')),
    sa.UniqueConstraint('record_no', name=op.f('record_record_no_key'))
    )
    op.create_index(op.f('record_entity_idx'), 'record', ['entity'], unique=False)
    op.create_index(op.f('record_kind_idx'), 'record', ['kind'], unique=False)
    op.create_index(op.f('record_sha256_idx'), 'record', ['sha256'], unique=False)
    op.create_table('record_revision',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=200), nullable=False),
    sa.Column('signed_field', sa.String(length=64), nullable=True),
    sa.Column('signer', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['record.id'], name=op.f('record_revision_record_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('record_revision_pkey'))
    )
    op.create_index(op.f('record_revision_record_id_idx'), 'record_revision', ['record_id'], unique=False)
    op.create_index(op.f('record_revision_sha256_idx'), 'record_revision', ['sha256'], unique=False)


    op.execute("""
        CREATE FUNCTION record_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_TABLE_NAME = 'record' AND TG_OP = 'UPDATE' THEN
                IF OLD.status <> 'sealed' THEN
                    RETURN NEW;  -- a record being signed gains signatures until the seal
                END IF;
            END IF;
            RAISE EXCEPTION '% is immutable: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
    """)
    op.execute("CREATE TRIGGER record_immutable BEFORE UPDATE OR DELETE ON record "
               "FOR EACH ROW EXECUTE FUNCTION record_refuse_change()")
    op.execute("CREATE TRIGGER record_revision_append_only BEFORE UPDATE OR DELETE ON record_revision "
               "FOR EACH ROW EXECUTE FUNCTION record_refuse_change()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS record_revision_append_only ON record_revision")
    op.execute("DROP TRIGGER IF EXISTS record_immutable ON record")
    op.execute("DROP FUNCTION IF EXISTS record_refuse_change()")
    op.drop_index(op.f('record_revision_sha256_idx'), table_name='record_revision')
    op.drop_index(op.f('record_revision_record_id_idx'), table_name='record_revision')
    op.drop_table('record_revision')
    op.drop_index(op.f('record_sha256_idx'), table_name='record')
    op.drop_index(op.f('record_kind_idx'), table_name='record')
    op.drop_index(op.f('record_entity_idx'), table_name='record')
    op.drop_table('record')
