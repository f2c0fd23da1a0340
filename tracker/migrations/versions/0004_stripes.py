"""Striped releases: a release's stripes are rows of their own (their own info hashes and swarms)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 02:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stripes', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('stripe_of', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('stripe', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_release_stripe_of'), ['stripe_of'], unique=False)
        batch_op.create_foreign_key('fk_release_stripe_of', 'release', ['stripe_of'], ['id'])


def downgrade() -> None:
    op.execute("DELETE FROM peer WHERE release_id IN (SELECT id FROM release WHERE stripe_of IS NOT NULL)")
    op.execute("DELETE FROM release WHERE stripe_of IS NOT NULL")
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.drop_constraint('fk_release_stripe_of', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_release_stripe_of'))
        batch_op.drop_column('stripe')
        batch_op.drop_column('stripe_of')
        batch_op.drop_column('stripes')
