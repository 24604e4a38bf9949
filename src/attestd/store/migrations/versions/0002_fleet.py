"""fleet: hosts, incidents, identity certificates, webhooks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 06:31:38.471554
"""
from alembic import op
import sqlalchemy as sa
import attestd.store.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host_id', sa.String(length=36), nullable=True))
    op.create_table('hosts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_name', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('ek_public', sa.LargeBinary(), nullable=False),
    sa.Column('ek_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('ek_certificate', sa.LargeBinary(), nullable=True),
    sa.Column('ak_public', sa.LargeBinary(), nullable=False),
    sa.Column('ak_name', sa.LargeBinary(), nullable=False),
    sa.Column('activation_hash', sa.String(length=64), nullable=True),
    sa.Column('activation_expires_at', attestd.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('created_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('last_attested_at', attestd.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_good_attestation_id', sa.String(length=36), nullable=True),
    sa.Column('baseline', sa.JSON(), nullable=True),
    sa.Column('identity_public', sa.LargeBinary(), nullable=True),
    sa.Column('cert_serial', sa.String(length=40), nullable=True),
    sa.Column('ima_state', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_name'], ['tenants.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_name', 'ek_fingerprint', name='uq_hosts_tenant_ek')
    )
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.create_index('ix_hosts_tenant_state', ['tenant_name', 'state'], unique=False)

    op.create_table('tenant_cas',
    sa.Column('tenant_name', sa.String(length=32), nullable=False),
    sa.Column('key_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('cert_der', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('crl_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_name'], ['tenants.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_name')
    )
    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_name', sa.String(length=32), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('created_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_name'], ['tenants.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('host_certificates',
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('tenant_name', sa.String(length=32), nullable=False),
    sa.Column('host_id', sa.String(length=36), nullable=False),
    sa.Column('not_before', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('not_after', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', attestd.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('der', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_name'], ['tenants.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('serial')
    )
    op.create_table('host_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('host_id', sa.String(length=36), nullable=False),
    sa.Column('at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=True),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=100), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('host_events', schema=None) as batch_op:
        batch_op.create_index('ix_host_events_host_time', ['host_id', 'at'], unique=False)

    op.create_table('incidents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_name', sa.String(length=32), nullable=False),
    sa.Column('host_id', sa.String(length=36), nullable=False),
    sa.Column('opened_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', attestd.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('attestation_id', sa.String(length=36), nullable=True),
    sa.Column('last_good_attestation_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_name'], ['tenants.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index('ix_incidents_tenant_time', ['tenant_name', 'opened_at'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('webhook_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', attestd.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_status', ['status', 'next_attempt_at'], unique=False)

    _host_secrets()


def _host_secrets() -> None:
    op.create_table('host_secrets',
    sa.Column('host_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('host_id', 'name')
    )


def downgrade() -> None:
    op.drop_table('host_secrets')
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.drop_column('host_id')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_status')

    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_tenant_time')

    op.drop_table('incidents')
    with op.batch_alter_table('host_events', schema=None) as batch_op:
        batch_op.drop_index('ix_host_events_host_time')

    op.drop_table('host_events')
    op.drop_table('host_certificates')
    op.drop_table('webhooks')
    op.drop_table('tenant_cas')
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.drop_index('ix_hosts_tenant_state')

    op.drop_table('hosts')
