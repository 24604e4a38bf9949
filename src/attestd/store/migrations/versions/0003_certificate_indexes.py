"""host certificates: indexes for revocation by host and pruning by expiry

A certificate is stored at every host attestation; revoking a host's certificates (quarantine,
retirement) and pruning expired ones must not scan them all.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:40:00
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_host_certificates_host', 'host_certificates', ['host_id'])
    op.create_index('ix_host_certificates_not_after', 'host_certificates', ['not_after'])


def downgrade() -> None:
    op.drop_index('ix_host_certificates_not_after', table_name='host_certificates')
    op.drop_index('ix_host_certificates_host', table_name='host_certificates')
