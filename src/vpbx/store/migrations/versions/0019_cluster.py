"""cluster_nodes, domain_leases, pending_callbacks: a cluster's nodes, each domain's owner with its fencing token,
and the callbacks a new owner resumes

Revision ID: 0019_cluster
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019_cluster'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cluster_nodes',
    sa.Column('node_id', sa.String(length=96), nullable=False),
    sa.Column('url', sa.String(length=255), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('beat_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('node_id', name=op.f('pk_cluster_nodes'))
    )
    op.create_index(op.f('ix_cluster_nodes_beat_at'), 'cluster_nodes', ['beat_at'], unique=False)
    op.create_table('domain_leases',
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.String(length=96), nullable=False),
    sa.Column('token', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_domain_leases_domain_id_domains'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('domain_id', name=op.f('pk_domain_leases'))
    )
    op.create_index(op.f('ix_domain_leases_node_id'), 'domain_leases', ['node_id'], unique=False)
    op.create_table('pending_callbacks',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_pending_callbacks_domain_id_domains'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_callbacks'))
    )
    op.create_index(op.f('ix_pending_callbacks_domain_id'), 'pending_callbacks', ['domain_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_pending_callbacks_domain_id'), table_name='pending_callbacks')
    op.drop_table('pending_callbacks')
    op.drop_index(op.f('ix_domain_leases_node_id'), table_name='domain_leases')
    op.drop_table('domain_leases')
    op.drop_index(op.f('ix_cluster_nodes_beat_at'), table_name='cluster_nodes')
    op.drop_table('cluster_nodes')
