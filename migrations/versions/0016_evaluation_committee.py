"""Evaluation committee and session flow: the members of a session (experts seated by the lot's confirmed draw,
tenderer representatives), their places and check-in; the session's start, suspension, venue fault and end.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 20:45:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    for column in (sa.Column('started_at', TZ, nullable=True), sa.Column('suspend_reason', sa.Text(), nullable=True),
                   sa.Column('fault_at', TZ, nullable=True), sa.Column('fault_outcome', sa.String(24), nullable=True),
                   sa.Column('ended_reason', sa.Text(), nullable=True),
                   sa.Column('materials_sealed_at', TZ, nullable=True),
                   sa.Column('materials_sha256', sa.String(64), nullable=True)):
        op.add_column('evaluation_session', column)
    op.create_check_constraint(op.f('evaluation_session_fault_outcome_known_check'), 'evaluation_session',
                               "fault_outcome IS NULL OR fault_outcome IN ('tenderer_decides')")

    op.create_table(
        'evaluation_member',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('public_id', sa.String(16), nullable=False),
        sa.Column('session_id', sa.BigInteger(), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('expert_id', sa.BigInteger(), nullable=True),
        sa.Column('invitation_id', sa.BigInteger(), nullable=True),
        sa.Column('user_id', sa.BigInteger(), nullable=True),
        sa.Column('quota', sa.String(64), nullable=True),
        sa.Column('seat', sa.Integer(), nullable=True),
        sa.Column('region_code', sa.String(6), nullable=True),
        sa.Column('place_id', sa.BigInteger(), nullable=True),
        sa.Column('status', sa.String(16), server_default='seated', nullable=False),
        sa.Column('checked_in_at', TZ, nullable=True),
        sa.Column('declaration', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('withdrawn_at', TZ, nullable=True),
        sa.Column('withdrawn_reason', sa.Text(), nullable=True),
        sa.Column('created_at', TZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('expert', 'representative')", name=op.f('evaluation_member_kind_known_check')),
        sa.CheckConstraint("status IN ('seated', 'checked_in', 'withdrawn')",
                           name=op.f('evaluation_member_status_known_check')),
        sa.CheckConstraint("(kind = 'expert') = (expert_id IS NOT NULL AND invitation_id IS NOT NULL)",
                           name=op.f('evaluation_member_expert_with_seat_check')),
        sa.CheckConstraint("(status = 'withdrawn') = (withdrawn_at IS NOT NULL)",
                           name=op.f('evaluation_member_withdrawn_when_stamped_check')),
        sa.ForeignKeyConstraint(['session_id'], ['evaluation_session.id'],
                                name=op.f('evaluation_member_session_id_fkey')),
        sa.ForeignKeyConstraint(['expert_id'], ['expert.id'], name=op.f('evaluation_member_expert_id_fkey')),
        sa.ForeignKeyConstraint(['invitation_id'], ['expert_invitation.id'],
                                name=op.f('evaluation_member_invitation_id_fkey')),
        sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('evaluation_member_user_id_fkey')),
        sa.ForeignKeyConstraint(['place_id'], ['venue_place.id'], name=op.f('evaluation_member_place_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('evaluation_member_pkey')),
        sa.UniqueConstraint('public_id', name=op.f('evaluation_member_public_id_key')),
    )
    op.create_index(op.f('evaluation_member_session_id_idx'), 'evaluation_member', ['session_id'])
    for column in ('expert_id', 'user_id', 'place_id'):
        op.create_index(f'evaluation_member_session_id_{column}_idx', 'evaluation_member', ['session_id', column],
                        unique=True, postgresql_where=sa.text(f"status <> 'withdrawn' AND {column} IS NOT NULL"))

    for column in (sa.Column('chair_member_id', sa.BigInteger(), nullable=True),
                   sa.Column('chair_how', sa.String(16), nullable=True),
                   sa.Column('chair_tie', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
                   sa.Column('chair_secret', sa.LargeBinary(), nullable=True),
                   sa.Column('chair_commitment', sa.String(64), nullable=True),
                   sa.Column('chair_entropy', sa.Text(), nullable=True),
                   sa.Column('chair_seed', sa.String(64), nullable=True)):
        op.add_column('evaluation_session', column)
    op.create_foreign_key(op.f('evaluation_session_chair_member_id_fkey'), 'evaluation_session', 'evaluation_member',
                          ['chair_member_id'], ['id'])
    op.create_table(
        'evaluation_chair_vote',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('session_id', sa.BigInteger(), nullable=False),
        sa.Column('voter_id', sa.BigInteger(), nullable=False),
        sa.Column('candidate_id', sa.BigInteger(), nullable=False),
        sa.Column('created_at', TZ, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['evaluation_session.id'],
                                name=op.f('evaluation_chair_vote_session_id_fkey')),
        sa.ForeignKeyConstraint(['voter_id'], ['evaluation_member.id'], name=op.f('evaluation_chair_vote_voter_id_fkey')),
        sa.ForeignKeyConstraint(['candidate_id'], ['evaluation_member.id'],
                                name=op.f('evaluation_chair_vote_candidate_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('evaluation_chair_vote_pkey')),
        sa.UniqueConstraint('session_id', 'voter_id', name='evaluation_chair_vote_session_id_key'),
    )

    for column in (sa.Column('review_requirements', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
                   sa.Column('review_result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
                   sa.Column('review_closed_at', TZ, nullable=True),
                   sa.Column('lot_failed', sa.Boolean(), server_default=sa.text('false'), nullable=False)):
        op.add_column('evaluation_session', column)
    op.create_table(
        'evaluation_review_vote',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('session_id', sa.BigInteger(), nullable=False),
        sa.Column('member_id', sa.BigInteger(), nullable=False),
        sa.Column('bidder_id', sa.BigInteger(), nullable=False),
        sa.Column('requirement', sa.String(32), nullable=False),
        sa.Column('passed', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('updated_at', TZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint('passed OR reason IS NOT NULL', name=op.f('evaluation_review_vote_reason_for_fail_check')),
        sa.ForeignKeyConstraint(['session_id'], ['evaluation_session.id'],
                                name=op.f('evaluation_review_vote_session_id_fkey')),
        sa.ForeignKeyConstraint(['member_id'], ['evaluation_member.id'],
                                name=op.f('evaluation_review_vote_member_id_fkey')),
        sa.ForeignKeyConstraint(['bidder_id'], ['organisation.id'], name=op.f('evaluation_review_vote_bidder_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('evaluation_review_vote_pkey')),
        sa.UniqueConstraint('session_id', 'member_id', 'bidder_id', 'requirement',
                            name='evaluation_review_vote_session_id_key'),
    )

    for column in (sa.Column('scoring_closed_at', TZ, nullable=True),
                   sa.Column('ranking', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
                   sa.Column('score_record', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
                   sa.Column('score_tie_groups', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
                   sa.Column('score_tie_secret', sa.LargeBinary(), nullable=True),
                   sa.Column('score_tie_commitment', sa.String(64), nullable=True),
                   sa.Column('score_tie_entropy', sa.Text(), nullable=True)):
        op.add_column('evaluation_session', column)
    op.create_table(
        'evaluation_score_sheet',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('session_id', sa.BigInteger(), nullable=False),
        sa.Column('member_id', sa.BigInteger(), nullable=False),
        sa.Column('bidder_id', sa.BigInteger(), nullable=False),
        sa.Column('scores', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('status', sa.String(16), server_default='draft', nullable=False),
        sa.Column('return_reason', sa.Text(), nullable=True),
        sa.Column('justifications', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"),
                  nullable=False),
        sa.Column('submitted_at', TZ, nullable=True),
        sa.Column('updated_at', TZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'submitted', 'returned')",
                           name=op.f('evaluation_score_sheet_status_known_check')),
        sa.ForeignKeyConstraint(['session_id'], ['evaluation_session.id'],
                                name=op.f('evaluation_score_sheet_session_id_fkey')),
        sa.ForeignKeyConstraint(['member_id'], ['evaluation_member.id'],
                                name=op.f('evaluation_score_sheet_member_id_fkey')),
        sa.ForeignKeyConstraint(['bidder_id'], ['organisation.id'], name=op.f('evaluation_score_sheet_bidder_id_fkey')),
        sa.PrimaryKeyConstraint('id', name=op.f('evaluation_score_sheet_pkey')),
        sa.UniqueConstraint('session_id', 'member_id', 'bidder_id', name='evaluation_score_sheet_session_id_key'),
    )


def downgrade() -> None:
    op.drop_table('evaluation_score_sheet')
    for column in ('score_tie_entropy', 'score_tie_commitment', 'score_tie_secret', 'score_tie_groups',
                   'score_record', 'ranking', 'scoring_closed_at'):
        op.drop_column('evaluation_session', column)
    op.drop_table('evaluation_review_vote')
    for column in ('lot_failed', 'review_closed_at', 'review_result', 'review_requirements'):
        op.drop_column('evaluation_session', column)
    op.drop_table('evaluation_chair_vote')
    op.drop_constraint(op.f('evaluation_session_chair_member_id_fkey'), 'evaluation_session', type_='foreignkey')
    for column in ('chair_seed', 'chair_entropy', 'chair_commitment', 'chair_secret', 'chair_tie', 'chair_how',
                   'chair_member_id'):
        op.drop_column('evaluation_session', column)
    op.drop_table('evaluation_member')
    op.drop_constraint(op.f('evaluation_session_fault_outcome_known_check'), 'evaluation_session', type_='check')
    for column in ('materials_sha256', 'materials_sealed_at', 'ended_reason', 'fault_outcome', 'fault_at',
                   'suspend_reason', 'started_at'):
        op.drop_column('evaluation_session', column)
