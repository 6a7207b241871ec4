"""settings: media, music, recording, BLF, answering machine, caller IDs, call restrictions

Revision ID: 0004
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vpbx.store.base

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('callerid_regions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('telnum', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_callerid_regions_domain_id_domains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callerid_regions')),
    sa.UniqueConstraint('domain_id', 'region_id', 'mode', name=op.f('uq_callerid_regions_domain_id_region_id_mode'))
    )
    with op.batch_alter_table('callerid_regions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callerid_regions_domain_id'), ['domain_id'], unique=False)

    op.create_table('media_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.String(length=100), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', vpbx.store.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_media_files_domain_id_domains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_files')),
    sa.UniqueConstraint('domain_id', 'file_id', name=op.f('uq_media_files_domain_id_file_id'))
    )
    with op.batch_alter_table('media_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_files_domain_id'), ['domain_id'], unique=False)

    op.create_table('outgoing_telnums',
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('telnum', sa.String(length=32), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_outgoing_telnums_domain_id_domains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('domain_id', 'telnum', name=op.f('pk_outgoing_telnums'))
    )
    op.create_table('callerid_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('telnum', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_callerid_groups_domain_id_domains'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_callerid_groups_group_id_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callerid_groups')),
    sa.UniqueConstraint('group_id', name=op.f('uq_callerid_groups_group_id'))
    )
    with op.batch_alter_table('callerid_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callerid_groups_domain_id'), ['domain_id'], unique=False)

    op.create_table('callerid_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('telnum', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_callerid_users_domain_id_domains'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_callerid_users_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callerid_users')),
    sa.UniqueConstraint('user_id', name=op.f('uq_callerid_users_user_id'))
    )
    with op.batch_alter_table('callerid_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callerid_users_domain_id'), ['domain_id'], unique=False)

    op.create_table('domain_settings',
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('ringback_standard', sa.String(length=32), nullable=True),
    sa.Column('ringback_media_id', sa.Integer(), nullable=True),
    sa.Column('holdmusic_standard', sa.String(length=32), nullable=True),
    sa.Column('holdmusic_media_id', sa.Integer(), nullable=True),
    sa.Column('record_external', sa.Boolean(), nullable=False),
    sa.Column('record_inner', sa.Boolean(), nullable=False),
    sa.Column('am_all', sa.Boolean(), nullable=False),
    sa.Column('am_email', sa.String(length=255), nullable=False),
    sa.Column('callerid_main', sa.String(length=32), nullable=True),
    sa.Column('restrictions_main', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_domain_settings_domain_id_domains'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['holdmusic_media_id'], ['media_files.id'], name=op.f('fk_domain_settings_holdmusic_media_id_media_files'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ringback_media_id'], ['media_files.id'], name=op.f('fk_domain_settings_ringback_media_id_media_files'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('domain_id', name=op.f('pk_domain_settings'))
    )
    with op.batch_alter_table('domain_settings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_domain_settings_holdmusic_media_id'), ['holdmusic_media_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_domain_settings_ringback_media_id'), ['ringback_media_id'], unique=False)

    op.create_table('restriction_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('allowed', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_restriction_groups_domain_id_domains'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_restriction_groups_group_id_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_restriction_groups')),
    sa.UniqueConstraint('group_id', name=op.f('uq_restriction_groups_group_id'))
    )
    with op.batch_alter_table('restriction_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_restriction_groups_domain_id'), ['domain_id'], unique=False)

    op.create_table('restriction_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('allowed', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_restriction_users_domain_id_domains'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_restriction_users_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_restriction_users')),
    sa.UniqueConstraint('user_id', name=op.f('uq_restriction_users_user_id'))
    )
    with op.batch_alter_table('restriction_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_restriction_users_domain_id'), ['domain_id'], unique=False)

    op.create_table('settings_group_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_settings_group_entries_domain_id_domains'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_settings_group_entries_group_id_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settings_group_entries')),
    sa.UniqueConstraint('kind', 'group_id', name=op.f('uq_settings_group_entries_kind_group_id'))
    )
    with op.batch_alter_table('settings_group_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settings_group_entries_domain_id'), ['domain_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_settings_group_entries_group_id'), ['group_id'], unique=False)

    op.create_table('settings_user_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_settings_user_entries_domain_id_domains'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_settings_user_entries_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settings_user_entries')),
    sa.UniqueConstraint('kind', 'user_id', name=op.f('uq_settings_user_entries_kind_user_id'))
    )
    with op.batch_alter_table('settings_user_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settings_user_entries_domain_id'), ['domain_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_settings_user_entries_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('settings_user_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settings_user_entries_user_id'))
        batch_op.drop_index(batch_op.f('ix_settings_user_entries_domain_id'))

    op.drop_table('settings_user_entries')
    with op.batch_alter_table('settings_group_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settings_group_entries_group_id'))
        batch_op.drop_index(batch_op.f('ix_settings_group_entries_domain_id'))

    op.drop_table('settings_group_entries')
    with op.batch_alter_table('restriction_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_restriction_users_domain_id'))

    op.drop_table('restriction_users')
    with op.batch_alter_table('restriction_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_restriction_groups_domain_id'))

    op.drop_table('restriction_groups')
    with op.batch_alter_table('domain_settings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_domain_settings_ringback_media_id'))
        batch_op.drop_index(batch_op.f('ix_domain_settings_holdmusic_media_id'))

    op.drop_table('domain_settings')
    with op.batch_alter_table('callerid_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callerid_users_domain_id'))

    op.drop_table('callerid_users')
    with op.batch_alter_table('callerid_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callerid_groups_domain_id'))

    op.drop_table('callerid_groups')
    op.drop_table('outgoing_telnums')
    with op.batch_alter_table('media_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_files_domain_id'))

    op.drop_table('media_files')
    with op.batch_alter_table('callerid_regions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callerid_regions_domain_id'))

    op.drop_table('callerid_regions')
