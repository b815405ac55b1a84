"""Join the schema branches of key holding that counts people and the venues' device accounts.

Revision ID: 0028
Revises: 0026, 0027
Create Date: 2026-12-02 03:55:00
"""
revision = '0028'
down_revision = ('0026', '0027')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
