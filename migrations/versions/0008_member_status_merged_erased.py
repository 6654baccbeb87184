"""members.status also 'merged' (a POS record linked into a LINE member) and 'erased'

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 03:10:00
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

NAME = 'ck_members_status_known'


def upgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_constraint(op.f(NAME), type_='check')
        batch_op.create_check_constraint(
            op.f(NAME), "status IN ('active', 'blocked', 'merged', 'erased')")
    # records closed before this revision: the audit log says which were erased or merged
    # (erased first: a merged record erased with its member later is erased, as now)
    op.execute("UPDATE members SET status = 'erased' WHERE status = 'blocked' AND id IN "
               "(SELECT member_id FROM audit_log WHERE action = 'member.erase')")
    op.execute("UPDATE members SET status = 'merged' WHERE status = 'blocked' AND id IN "
               "(SELECT member_id FROM audit_log WHERE action = 'member.merged')")


def downgrade() -> None:
    op.execute("UPDATE members SET status = 'blocked' WHERE status IN ('merged', 'erased')")
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_constraint(op.f(NAME), type_='check')
        batch_op.create_check_constraint(op.f(NAME), "status IN ('active', 'blocked')")
