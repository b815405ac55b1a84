"""Enrolment: the TOTP secret offered during an enrolment is stored sealed under the master secret (wider column).

Pending secrets written before are plaintext and still complete their enrolment; new offers are sealed.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-01 23:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column('enrolment_token', 'pending_totp_secret', type_=sa.Text(), existing_type=sa.String(length=64),
                    existing_nullable=True)


def downgrade() -> None:
    # sealed values do not fit the old width: pending offers are dropped (the person scans a new secret)
    op.execute("UPDATE enrolment_token SET pending_totp_secret = NULL")
    op.alter_column('enrolment_token', 'pending_totp_secret', type_=sa.String(length=64), existing_type=sa.Text(),
                    existing_nullable=True)
