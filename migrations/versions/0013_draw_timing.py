"""Expert draws: one original draw per lot, cancellation with a reason, invitations withdrawn by avoidance.

- A lot has one live original draw; further draws are supplementary (补抽), or follow the cancellation of the
  original, which records who cancelled it, when and why. A partial unique index holds the rule.
- Invitations gain two end states: `cancelled` (their draw was cancelled) and `withdrawn` (re-screened at the
  bid deadline, the expert now conflicts with a bidder; the reason is in `decline_reason`).
- Draw records follow the visibility of their draw: the public edition, archived so far with audience
  `public`, is re-labelled `entity` (whoever the draw's audience rule admits).
- Existing lots with several live original draws keep the newest; the older ones are marked cancelled.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-01 20:10:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0010'
branch_labels = None
depends_on = None

DRAW_OLD = "status IN ('awaiting_entropy', 'executed', 'formed', 'short')"
DRAW_NEW = "status IN ('awaiting_entropy', 'executed', 'formed', 'short', 'cancelled')"
INVITATION_OLD = "status IN ('pending', 'accepted', 'declined', 'expired')"
INVITATION_NEW = "status IN ('pending', 'accepted', 'declined', 'expired', 'cancelled', 'withdrawn')"


def upgrade() -> None:
    op.add_column('expert_draw', sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('expert_draw', sa.Column('cancelled_by_id', sa.BigInteger(), nullable=True))
    op.add_column('expert_draw', sa.Column('cancel_reason', sa.Text(), nullable=True))
    op.create_foreign_key(op.f('expert_draw_cancelled_by_id_fkey'), 'expert_draw', 'app_user',
                          ['cancelled_by_id'], ['id'])
    op.drop_constraint(op.f('expert_draw_status_known_check'), 'expert_draw', type_='check')
    op.create_check_constraint(op.f('expert_draw_status_known_check'), 'expert_draw', DRAW_NEW)
    op.drop_constraint(op.f('expert_invitation_status_known_check'), 'expert_invitation', type_='check')
    op.create_check_constraint(op.f('expert_invitation_status_known_check'), 'expert_invitation', INVITATION_NEW)
    op.execute("""
        UPDATE expert_draw d SET status = 'cancelled', cancelled_at = now(),
               cancel_reason = 'superseded by a later original draw of the same lot (migration 0013)'
        WHERE d.parent_id IS NULL AND d.status <> 'cancelled' AND EXISTS (
            SELECT 1 FROM expert_draw n WHERE n.lot_id = d.lot_id AND n.parent_id IS NULL
            AND n.status <> 'cancelled' AND n.id > d.id)""")
    op.create_index('expert_draw_one_original_idx', 'expert_draw', ['lot_id'], unique=True,
                    postgresql_where=sa.text("parent_id IS NULL AND status <> 'cancelled'"))
    op.execute("UPDATE record SET audience = 'entity' WHERE kind = 'expert_draw' AND audience = 'public'")


def downgrade() -> None:
    op.execute("UPDATE record SET audience = 'public' WHERE kind = 'expert_draw' AND audience = 'entity'")
    op.drop_index('expert_draw_one_original_idx', table_name='expert_draw',
                  postgresql_where=sa.text("parent_id IS NULL AND status <> 'cancelled'"))
    op.execute("UPDATE expert_invitation SET status = 'expired' WHERE status IN ('cancelled', 'withdrawn')")
    op.execute("UPDATE expert_draw SET status = 'short' WHERE status = 'cancelled'")
    op.drop_constraint(op.f('expert_invitation_status_known_check'), 'expert_invitation', type_='check')
    op.create_check_constraint(op.f('expert_invitation_status_known_check'), 'expert_invitation', INVITATION_OLD)
    op.drop_constraint(op.f('expert_draw_status_known_check'), 'expert_draw', type_='check')
    op.create_check_constraint(op.f('expert_draw_status_known_check'), 'expert_draw', DRAW_OLD)
    op.drop_constraint(op.f('expert_draw_cancelled_by_id_fkey'), 'expert_draw', type_='foreignkey')
    op.drop_column('expert_draw', 'cancel_reason')
    op.drop_column('expert_draw', 'cancelled_by_id')
    op.drop_column('expert_draw', 'cancelled_at')
