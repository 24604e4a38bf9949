"""attestation records: large parts stored once per content; indexes for retention

A host's event log and PCR values, and the claims, issued claims and policy trace of its decision,
are the same at every attestation until it boots into something else: records refer to them in
``attestation_blobs`` (keyed by SHA-256, see attestd.store.blobs) instead of repeating ~30 KB each. Retention deletes old
records except those hosts and incidents refer to: indexes on those references. Records written
before keep their parts inline. On SQLite the attestations table is rebuilt (a foreign key cannot
be added in place), which copies it once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 14:10:00
"""
import sqlalchemy as sa
from alembic import op

import attestd.store.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('attestation_blobs',
                    sa.Column('sha256', sa.String(length=64), nullable=False),
                    sa.Column('data', sa.LargeBinary(), nullable=False),
                    sa.Column('created_at', attestd.store.types.UtcDateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('sha256'))
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('boot_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('decision_sha256', sa.String(length=64), nullable=True))
        batch_op.create_foreign_key('attestations_boot_sha256_fkey', 'attestation_blobs',
                                    ['boot_sha256'], ['sha256'])
        batch_op.create_foreign_key('attestations_decision_sha256_fkey', 'attestation_blobs',
                                    ['decision_sha256'], ['sha256'])
        batch_op.create_index('ix_attestations_boot', ['boot_sha256'], unique=False)
        batch_op.create_index('ix_attestations_decision', ['decision_sha256'], unique=False)
    op.create_index('ix_hosts_last_good_attestation', 'hosts', ['last_good_attestation_id'])
    op.create_index('ix_incidents_attestation', 'incidents', ['attestation_id'])
    op.create_index('ix_incidents_last_good_attestation', 'incidents', ['last_good_attestation_id'])


def downgrade() -> None:
    """Puts the parts of records written since back inline, then drops the blobs."""
    bind = op.get_bind()
    blobs = sa.table('attestation_blobs', sa.column('sha256', sa.String), sa.column('data', sa.LargeBinary))
    attestations = sa.table('attestations', sa.column('id', sa.String), sa.column('evidence', sa.JSON),
                            sa.column('claims', sa.JSON), sa.column('issued_claims', sa.JSON),
                            sa.column('trace', sa.JSON), sa.column('boot_sha256', sa.String),
                            sa.column('decision_sha256', sa.String))
    import json
    data = {row.sha256: bytes(row.data) for row in bind.execute(sa.select(blobs))}
    rows = bind.execute(sa.select(attestations).where(sa.or_(attestations.c.boot_sha256.is_not(None),
                                                             attestations.c.decision_sha256.is_not(None)))).all()
    for row in rows:
        values = {}
        if row.boot_sha256 is not None:
            values['evidence'] = {**row.evidence, **json.loads(data[row.boot_sha256])}
        if row.decision_sha256 is not None:
            decision = json.loads(data[row.decision_sha256])
            values.update(claims=decision.get('claims'), issued_claims=decision.get('issuedClaims'),
                          trace=decision.get('trace'))
        bind.execute(attestations.update().where(attestations.c.id == row.id).values(**values))
    op.drop_index('ix_incidents_last_good_attestation', table_name='incidents')
    op.drop_index('ix_incidents_attestation', table_name='incidents')
    op.drop_index('ix_hosts_last_good_attestation', table_name='hosts')
    with op.batch_alter_table('attestations', schema=None) as batch_op:
        batch_op.drop_index('ix_attestations_decision')
        batch_op.drop_index('ix_attestations_boot')
        batch_op.drop_constraint('attestations_decision_sha256_fkey', type_='foreignkey')
        batch_op.drop_constraint('attestations_boot_sha256_fkey', type_='foreignkey')
        batch_op.drop_column('decision_sha256')
        batch_op.drop_column('boot_sha256')
    op.drop_table('attestation_blobs')
