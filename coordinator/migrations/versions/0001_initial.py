"""The first schema: principals, nodes, datasets, budgets, the ledger, studies, approvals, the audit chain.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.String(40)


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("datasets", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("principal_id", sa.Integer, sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("dataset", sa.String(96), nullable=False, unique=True),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("enrolled_at", _TS, nullable=False),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(96), primary_key=True),
        sa.Column("municipality", sa.String(48), nullable=False),
        sa.Column("sector", sa.String(48), nullable=False),
        sa.Column("contract", sa.String(48), nullable=False),
        sa.Column("contract_version", sa.String(32), nullable=False),
        sa.Column("verdict", sa.Text),
        sa.Column("verdict_at", _TS),
    )
    for table, key in (("budgets", "dataset"), ("municipality_caps", "municipality")):
        op.create_table(
            table,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(key, sa.String(96), nullable=False),
            sa.Column("period", sa.String(32), nullable=False),
            sa.Column("cap_units", sa.BigInteger, nullable=False),
            sa.Column("delta", sa.Float, nullable=False),
            sa.Column("set_by", sa.String(64), nullable=False),
            sa.Column("set_at", _TS, nullable=False),
        )
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset", sa.String(96), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("study_id", sa.String(64), nullable=False),
        sa.Column("units", sa.BigInteger, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("study_id", "dataset", "period", name="one_charge_per_study_dataset"),
    )
    op.create_index("ledger_by_dataset", "ledger", ["dataset", "period"])
    op.create_table(
        "studies",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("template", sa.String(48), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("legal_basis", sa.Text, nullable=False),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("contact", sa.String(200), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("analyst", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("cost", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("approved_at", _TS),
        sa.Column("launched_at", _TS),
        sa.Column("finished_at", _TS),
        sa.Column("run_id", sa.String(24)),
        sa.Column("progress", sa.Text),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.String(64), sa.ForeignKey("studies.id"), nullable=False),
        sa.Column("dataset", sa.String(96), nullable=False),
        sa.Column("officer", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.UniqueConstraint("study_id", "dataset", name="one_decision_per_dataset"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    op.create_table(
        "chain_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.execute(sa.text("INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')"))
    _append_only("ledger")
    _append_only("audit_log")


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE in the database itself: the ledger and the audit log only grow."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(sa.text(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"))
    elif op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"))
        op.execute(sa.text(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"))


def downgrade() -> None:
    for table in ("chain_head", "audit_log", "approvals", "studies", "ledger", "municipality_caps", "budgets",
                  "datasets", "nodes", "principals"):
        op.drop_table(table)
