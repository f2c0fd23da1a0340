"""Peer revocations: when a host was revoked, and the addresses hosts were seen at as peers

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 15:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_at', sa.Float(), nullable=True))
    op.create_table(
        'peeraddress',
        sa.Column('host_id', sa.Integer(), nullable=False),
        sa.Column('ip', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('seen_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['host_id'], ['host.id'], ),
        sa.PrimaryKeyConstraint('host_id', 'ip'),
    )


def downgrade() -> None:
    op.drop_table('peeraddress')
    with op.batch_alter_table('host', schema=None) as batch_op:
        batch_op.drop_column('revoked_at')
