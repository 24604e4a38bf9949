"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2025-01-01
"""
import sqlalchemy as sa
from alembic import op

import attestd.store.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_name', sa.String(length=32), nullable=False),
    sa.Column('at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_tenant_time', ['tenant_name', 'at'], unique=False)

    op.create_table('consumed_nonces',
    sa.Column('tenant_name', sa.String(length=32), nullable=False),
    sa.Column('nonce_id', sa.String(length=64), nullable=False),
    sa.Column('consumed_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant_name', 'nonce_id')
    )
    with op.batch_alter_table('consumed_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consumed_nonces_expires_at'), ['expires_at'], unique=False)

    op.create_table('tenants',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('created_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('keyset_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('keyset_version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('tenant_name', sa.String(length=32), nullable=True),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('created_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', attestd.store.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_name'], ['tenants.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('policy_signers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_name', sa.String(length=32), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('cert_pem', sa.Text(), nullable=False),
    sa.Column('added_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('added_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['tenant_name'], ['tenants.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_name', 'fingerprint', name='uq_policy_signer')
    )
    op.create_table('policy_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_name', sa.String(length=32), nullable=False),
    sa.Column('attestation_type', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('policy_hash', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('signer_cert_pem', sa.Text(), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('builtin', sa.String(length=64), nullable=True),
    sa.Column('created_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['tenant_name'], ['tenants.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_name', 'attestation_type', 'version', name='uq_policy_version')
    )
    op.create_table('attestations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_name', sa.String(length=32), nullable=False),
    sa.Column('created_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('attestation_type', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('error_code', sa.String(length=100), nullable=True),
    sa.Column('explanation', sa.Text(), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('claims', sa.JSON(), nullable=True),
    sa.Column('issued_claims', sa.JSON(), nullable=True),
    sa.Column('trace', sa.JSON(), nullable=True),
    sa.Column('policy_version_id', sa.Integer(), nullable=True),
    sa.Column('policy_hash', sa.String(length=64), nullable=True),
    sa.Column('draft', sa.Boolean(), nullable=False),
    sa.Column('nonce_id', sa.String(length=64), nullable=True),
    sa.Column('token_jti', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['policy_version_id'], ['policy_versions.id'], ),
    sa.ForeignKeyConstraint(['tenant_name'], ['tenants.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.create_index('ix_attestations_tenant_time', ['tenant_name', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_attestations_token_jti'), ['token_jti'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attestations_token_jti'))
        batch_op.drop_index('ix_attestations_tenant_time')

    op.drop_table('attestations')
    op.drop_table('policy_versions')
    op.drop_table('policy_signers')
    op.drop_table('api_tokens')
    op.drop_table('tenants')
    with op.batch_alter_table('consumed_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consumed_nonces_expires_at'))

    op.drop_table('consumed_nonces')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_tenant_time')

    op.drop_table('audit_events')
