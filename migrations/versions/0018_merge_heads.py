"""Join the schema branches of trading, draws, identity, venues and evaluation into one line again.

Revision ID: 0018
Revises: 0011, 0012, 0013, 0014, 0016, 0017
Create Date: 2026-12-01 23:00:00
"""
revision = '0018'
down_revision = ('0011', '0012', '0013', '0014', '0016', '0017')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
