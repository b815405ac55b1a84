"""A tender's key threshold k and holder count n count people only; the platform's share is held beside them.

Before, k and n counted the platform's share as one of the n shares, so with it k - 1 people could open a
tender. Now k people are always needed: a tender whose platform holds a share is split with threshold k + 1 among
n + 1 shares (trading.keyholding.shares_needed). Tenders with the platform's share keep their meaning in the new
terms: both numbers drop by one, so a sealed tender's Shamir threshold (the old k) is still k + 1, and a draft
asks for the same people as before.

Revision ID: 0026
Revises: 0024
Create Date: 2026-12-02 02:30:00
"""
from alembic import op

revision = '0026'
down_revision = '0024'
branch_labels = None
depends_on = None

# a draft follows its flag; a sealed tender follows the shares it was split into
_WITH_PLATFORM_SHARE = (
    "(age_recipient IS NULL AND platform_holds_share) OR (age_recipient IS NOT NULL AND EXISTS ("
    "SELECT 1 FROM tender_key_holder h WHERE h.tender_id = tender.id AND h.user_id IS NULL "
    "AND h.encrypted_share IS NOT NULL))")


def upgrade() -> None:
    op.execute("UPDATE tender SET key_threshold = key_threshold - 1, key_holder_count = key_holder_count - 1 "
               f"WHERE key_threshold > 1 AND ({_WITH_PLATFORM_SHARE})")


def downgrade() -> None:
    op.execute("UPDATE tender SET key_holder_count = key_holder_count + 1, key_threshold = key_threshold + 1 "
               f"WHERE {_WITH_PLATFORM_SHARE}")
