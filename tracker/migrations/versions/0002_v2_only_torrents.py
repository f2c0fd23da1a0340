"""v2-only torrents: a release may have no v1 info hash

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 15:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.alter_column('info_hash_v1', existing_type=sa.String(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.alter_column('info_hash_v1', existing_type=sa.String(), nullable=False)
