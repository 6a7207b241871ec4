"""call_history: index missed calls by client (the engine settles a client's missed calls on every answer)

Without it SQLite's planner picked (domain_id, start) for the settlement UPDATE and scanned the domain's whole
history once per answered call.

Revision ID: 0009
Revises: 0006
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('call_history', schema=None) as batch_op:
        batch_op.create_index('ix_call_history_domain_client_missed', ['domain_id', 'client', 'missed_status'],
                              unique=False)
        batch_op.drop_index('ix_call_history_domain_client')


def downgrade() -> None:
    with op.batch_alter_table('call_history', schema=None) as batch_op:
        batch_op.create_index('ix_call_history_domain_client', ['domain_id', 'client'], unique=False)
        batch_op.drop_index('ix_call_history_domain_client_missed')
