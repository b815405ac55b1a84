"""Join the schema branches of the serving role, candidates from reports and the draw's session reference.

Revision ID: 0024
Revises: 0021, 0022, 0023
Create Date: 2026-12-02 00:35:00
"""
revision = '0024'
down_revision = ('0021', '0022', '0023')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
