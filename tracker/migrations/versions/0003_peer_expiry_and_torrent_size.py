"""Each peer's own expiry; each release's size as BitTorrent clients count it (with padding);
the fleet's throughput history; v1-only torrents (no v2 info hash)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 23:00:00
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _torrent_size(manifest: str) -> int:
    """As common.layout.Layout.torrent_size, from the stored manifest: every file of a model of
    several files is padded to a piece boundary, the last one too."""
    m = json.loads(manifest)
    sizes = [f["size"] for f in m["files"]]
    piece = m["piece_size"]
    return sum(-(-s // piece) * piece for s in sizes) if len(sizes) > 1 else sum(sizes)


def upgrade() -> None:
    op.create_table('throughputsample',
                    sa.Column('bucket', sa.Integer(), nullable=False),
                    sa.Column('time', sa.Float(), nullable=False),
                    sa.Column('download_rate', sa.Float(), nullable=False),
                    sa.Column('hosts', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('bucket'))
    with op.batch_alter_table('peer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires', sa.Float(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_peer_expires'), ['expires'], unique=False)
    # Until their next announce, peers keep the expiry they had: 2.5 default intervals of 60 s.
    op.execute("UPDATE peer SET expires = last_seen + 150")
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.add_column(sa.Column('torrent_size', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.alter_column('info_hash_v2', existing_type=sa.String(), nullable=True)  # v1-only torrents
    conn = op.get_bind()
    for rid, manifest in conn.execute(sa.text("SELECT id, manifest FROM release")).all():
        conn.execute(sa.text("UPDATE release SET torrent_size = :s WHERE id = :id"),
                     {"s": _torrent_size(manifest), "id": rid})


def downgrade() -> None:
    op.drop_table('throughputsample')
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.alter_column('info_hash_v2', existing_type=sa.String(), nullable=False)
        batch_op.drop_column('torrent_size')
    with op.batch_alter_table('peer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_peer_expires'))
        batch_op.drop_column('expires')
