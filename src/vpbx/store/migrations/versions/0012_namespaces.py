"""namespaces: one extension per owner in a domain, one domain per number in the server

Extensions: employees and departments of a domain share one namespace (the ``extensions`` table's
primary key). Check-then-insert writers of earlier versions could leave two owners with one extension
and the table out of step with ``users``/``groups``. This revision keeps each extension with its first
owner (the one the table names, else the oldest employee, else the oldest department), gives every other
holder the lowest free extension (logged), rebuilds the table from ``users`` and ``groups`` and adds a
unique key per kind as a second guard.

Numbers: a number belongs to one domain in the whole server. The documents' example numbers, which every
demo company gets (the demo domain, the tests' tenants), are marked ``example`` and stay outside the key.
Of any other number held by several domains, the oldest row is kept and the later ones are removed
(logged: an operator re-adds a number where it belongs).

Revision ID: 0012
Revises: 0001
"""
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = '0003'  # telnums, sim_pool

log = logging.getLogger("alembic.runtime.migration")

# The demo company's numbers and SIM cards (services.numbers.demo_numbers, services.sims.demo_sims) as of this
# revision; later demo numbers are marked when they are added.
EXAMPLE_NUMBERS = ('74951234567', '74957654321', '78121234567', '74952005060', '74954010121', '74957616794')
FIRST_FREE = 700

users = sa.table('users', sa.column('id', sa.Integer), sa.column('domain_id', sa.Integer),
                 sa.column('ext', sa.String), sa.column('login', sa.String))
groups = sa.table('groups', sa.column('id', sa.Integer), sa.column('domain_id', sa.Integer),
                  sa.column('ext', sa.String))
extensions = sa.table('extensions', sa.column('domain_id', sa.Integer), sa.column('ext', sa.String),
                      sa.column('owner_kind', sa.String), sa.column('owner_id', sa.Integer))
telnums = sa.table('telnums', sa.column('id', sa.Integer), sa.column('domain_id', sa.Integer),
                   sa.column('telnum', sa.String), sa.column('example', sa.Boolean))
sim_pool = sa.table('sim_pool', sa.column('telnum', sa.String), sa.column('example', sa.Boolean))


def _next_free(used: set[str]) -> str:
    n = FIRST_FREE
    while str(n) in used:
        n += 1
    return str(n)


def _deduplicate_extensions(conn: sa.Connection) -> None:
    claimed = {(r.domain_id, r.ext): (r.owner_kind, r.owner_id) for r in conn.execute(sa.select(extensions))}
    holders: dict[tuple[int, str], list[tuple[str, int]]] = {}
    for r in conn.execute(sa.select(users.c.domain_id, users.c.ext, users.c.id).order_by(users.c.id)):
        holders.setdefault((r.domain_id, r.ext), []).append(('user', r.id))
    for r in conn.execute(sa.select(groups.c.domain_id, groups.c.ext, groups.c.id).order_by(groups.c.id)):
        holders.setdefault((r.domain_id, r.ext), []).append(('group', r.id))
    used: dict[int, set[str]] = {}
    for domain_id, ext in holders:
        used.setdefault(domain_id, set()).add(ext)
    for (domain_id, ext), owners in sorted(holders.items()):
        if len(owners) < 2:
            continue
        keeper = claimed.get((domain_id, ext))
        if keeper not in owners:
            keeper = owners[0]  # users come first, each kind oldest first
        for kind, owner_id in owners:
            if (kind, owner_id) == keeper:
                continue
            new = _next_free(used[domain_id])
            used[domain_id].add(new)
            table = users if kind == 'user' else groups
            conn.execute(table.update().where(table.c.id == owner_id).values(ext=new))
            log.warning("domain %s: extension %s was held twice; %s %s now has %s", domain_id, ext, kind,
                        owner_id, new)
    conn.execute(extensions.delete())
    rows = [{'domain_id': d, 'ext': e, 'owner_kind': k, 'owner_id': i}
            for d, e, k, i in conn.execute(sa.union_all(
                sa.select(users.c.domain_id, users.c.ext, sa.literal('user'), users.c.id),
                sa.select(groups.c.domain_id, groups.c.ext, sa.literal('group'), groups.c.id)))]
    if rows:
        conn.execute(extensions.insert(), rows)


def _deduplicate_numbers(conn: sa.Connection) -> None:
    conn.execute(telnums.update().where(telnums.c.telnum.in_(EXAMPLE_NUMBERS)).values(example=True))
    conn.execute(sim_pool.update().where(sim_pool.c.telnum.in_(EXAMPLE_NUMBERS)).values(example=True))
    seen: set[str] = set()
    for r in conn.execute(sa.select(telnums.c.id, telnums.c.domain_id, telnums.c.telnum)
                          .where(sa.not_(telnums.c.example)).order_by(telnums.c.id)):
        if r.telnum in seen:
            conn.execute(telnums.delete().where(telnums.c.id == r.id))
            log.warning("number %s was held by several domains: removed from domain %s (kept by the first)",
                        r.telnum, r.domain_id)
        seen.add(r.telnum)


def upgrade() -> None:
    with op.batch_alter_table('telnums', schema=None) as batch_op:
        batch_op.add_column(sa.Column('example', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('sim_pool', schema=None) as batch_op:
        batch_op.add_column(sa.Column('example', sa.Boolean(), nullable=False, server_default=sa.false()))
    conn = op.get_bind()
    _deduplicate_extensions(conn)
    _deduplicate_numbers(conn)
    op.create_index('ux_users_domain_ext', 'users', ['domain_id', 'ext'], unique=True)
    op.create_index('ux_groups_domain_ext', 'groups', ['domain_id', 'ext'], unique=True)
    op.create_index('ux_telnums_telnum', 'telnums', ['telnum'], unique=True,
                    sqlite_where=sa.text('NOT example'), postgresql_where=sa.text('NOT example'))


def downgrade() -> None:
    op.drop_index('ux_telnums_telnum', table_name='telnums')
    op.drop_index('ux_groups_domain_ext', table_name='groups')
    op.drop_index('ux_users_domain_ext', table_name='users')
    with op.batch_alter_table('sim_pool', schema=None) as batch_op:
        batch_op.drop_column('example')
    with op.batch_alter_table('telnums', schema=None) as batch_op:
        batch_op.drop_column('example')
