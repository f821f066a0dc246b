"""The database refuses what the coordinator never does: negative amounts, and every way of rewriting the
ledger, the audit log, budgets, caps, principals and the chain head.

- CHECK constraints: a charge's units and a budget's or cap's units are never negative.
- ``ledger``, ``audit_log``, ``budgets``, ``municipality_caps``: append-only against every conflict path —
  UPDATE (also an upsert's DO UPDATE), DELETE, and on SQLite ``REPLACE``/``INSERT OR REPLACE`` (which deletes
  the row it replaces without firing DELETE triggers: a BEFORE INSERT trigger refuses a row whose key exists);
  on PostgreSQL also TRUNCATE (which fires no row trigger).
- ``principals``: only revocation changes a row (``revoked_at`` from empty to a time, once); nothing else
  of a principal — name, role, token hash, datasets — is ever updated, and no principal is deleted or replaced.
- ``chain_head``: moves one entry forward at a time; never deleted, replaced or added to.

Someone with write access to the database file can still drop these triggers: ``tillit audit verify``
recomputes the tables from the signed chain and names what was changed all the same.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: table → the columns a second row may not share with an existing one (SQLite's REPLACE path)
_APPEND_ONLY = {
    "ledger": "id = NEW.id OR (study_id = NEW.study_id AND dataset = NEW.dataset AND period = NEW.period)",
    "audit_log": "seq = NEW.seq",
    "budgets": "id = NEW.id",
    "municipality_caps": "id = NEW.id",
}
_CHECKS = (("ledger", "ledger_units_not_negative", "units >= 0"),
           ("budgets", "budgets_cap_not_negative", "cap_units >= 0"),
           ("municipality_caps", "municipality_caps_cap_not_negative", "cap_units >= 0"))
#: what may differ between a principal's old and new row: only revoked_at, and only from empty
_PRINCIPAL_CHANGED = ("NEW.id IS NOT OLD.id OR NEW.name IS NOT OLD.name OR NEW.role IS NOT OLD.role "
                      "OR NEW.token_hash IS NOT OLD.token_hash OR NEW.datasets IS NOT OLD.datasets "
                      "OR NEW.created_at IS NOT OLD.created_at OR OLD.revoked_at IS NOT NULL "
                      "OR NEW.revoked_at IS NULL")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite()
    elif dialect == "postgresql":
        _postgresql()


def _raise(message: str) -> str:
    return f"SELECT RAISE(ABORT, '{message}');"


def _sqlite() -> None:
    for table in ("ledger", "audit_log"):      # revision 0001's triggers, replaced below
        for verb in ("update", "delete"):
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_{verb}"))
    for table, name, condition in _CHECKS:    # SQLite adds a CHECK only by rebuilding the table
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.create_check_constraint(name, condition)
    for table, same_key in _APPEND_ONLY.items():
        message = f"{table} is append-only"
        for verb in ("UPDATE", "DELETE"):
            op.execute(sa.text(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                               f"BEGIN {_raise(message)} END"))
        op.execute(sa.text(f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
                           f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {same_key}) BEGIN {_raise(message)} END"))
    only_revocation = "a principal is never changed, only revoked (once)"
    op.execute(sa.text(f"CREATE TRIGGER principals_only_revocation BEFORE UPDATE ON principals "
                       f"WHEN {_PRINCIPAL_CHANGED} BEGIN {_raise(only_revocation)} END"))
    op.execute(sa.text(f"CREATE TRIGGER principals_no_delete BEFORE DELETE ON principals "
                       f"BEGIN {_raise(only_revocation)} END"))
    op.execute(sa.text(f"CREATE TRIGGER principals_no_replace BEFORE INSERT ON principals WHEN EXISTS "
                       "(SELECT 1 FROM principals WHERE id = NEW.id OR name = NEW.name OR token_hash = NEW.token_hash) "
                       f"BEGIN {_raise(only_revocation)} END"))
    forward = "the audit chain head only moves one entry forward"
    op.execute(sa.text(f"CREATE TRIGGER chain_head_forward BEFORE UPDATE ON chain_head "
                       f"WHEN NEW.id IS NOT OLD.id OR NEW.seq IS NOT OLD.seq + 1 BEGIN {_raise(forward)} END"))
    for verb in ("DELETE", "INSERT"):
        op.execute(sa.text(f"CREATE TRIGGER chain_head_no_{verb.lower()} BEFORE {verb} ON chain_head "
                           f"BEGIN {_raise(forward)} END"))


def _plpgsql(name: str, body: str) -> None:
    op.execute(sa.text(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$"))


def _postgresql() -> None:
    for table, name, condition in _CHECKS:
        op.create_check_constraint(name, table, condition)
    for table in _APPEND_ONLY:
        # revision 0001 made ledger_append_only and audit_log_append_only (UPDATE, DELETE); the others are new
        _plpgsql(f"{table}_append_only", f"BEGIN RAISE EXCEPTION '{table} is append-only'; END;")
        op.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
        op.execute(sa.text(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                           f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"))
        op.execute(sa.text(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                           f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"))
    changed = _PRINCIPAL_CHANGED.replace(" IS NOT OLD.", " IS DISTINCT FROM OLD.")
    _plpgsql("principals_only_revocation",
             "BEGIN IF TG_OP <> 'UPDATE' OR " + changed + " THEN "
             "RAISE EXCEPTION 'a principal is never changed, only revoked (once)'; END IF; RETURN NEW; END;")
    op.execute(sa.text("CREATE TRIGGER principals_only_revocation BEFORE UPDATE OR DELETE ON principals "
                       "FOR EACH ROW EXECUTE FUNCTION principals_only_revocation()"))
    op.execute(sa.text("CREATE TRIGGER principals_no_truncate BEFORE TRUNCATE ON principals "
                       "FOR EACH STATEMENT EXECUTE FUNCTION principals_only_revocation()"))
    _plpgsql("chain_head_forward",
             "BEGIN IF TG_OP <> 'UPDATE' OR NEW.id IS DISTINCT FROM OLD.id OR NEW.seq IS DISTINCT FROM OLD.seq + 1 "
             "THEN RAISE EXCEPTION 'the audit chain head only moves one entry forward'; END IF; RETURN NEW; END;")
    op.execute(sa.text("CREATE TRIGGER chain_head_forward BEFORE INSERT OR UPDATE OR DELETE ON chain_head "
                       "FOR EACH ROW EXECUTE FUNCTION chain_head_forward()"))
    op.execute(sa.text("CREATE TRIGGER chain_head_no_truncate BEFORE TRUNCATE ON chain_head "
                       "FOR EACH STATEMENT EXECUTE FUNCTION chain_head_forward()"))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in _APPEND_ONLY:
            for verb in ("update", "delete", "replace"):
                op.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_{verb}"))
        for name in ("principals_only_revocation", "principals_no_delete", "principals_no_replace",
                     "chain_head_forward", "chain_head_no_delete", "chain_head_no_insert"):
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}"))
        for table, name, _ in _CHECKS:
            with op.batch_alter_table(table, recreate="always") as batch:
                batch.drop_constraint(name, type_="check")
        for table in ("ledger", "audit_log"):   # back to revision 0001's triggers
            for verb in ("UPDATE", "DELETE"):
                op.execute(sa.text(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                                   f"BEGIN {_raise(f'{table} is append-only')} END"))
    elif dialect == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}"))
            if table not in ("ledger", "audit_log"):
                op.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
                op.execute(sa.text(f"DROP FUNCTION IF EXISTS {table}_append_only()"))
        for table, function in (("principals", "principals_only_revocation"), ("chain_head", "chain_head_forward")):
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {function} ON {table}"))
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}"))
            op.execute(sa.text(f"DROP FUNCTION IF EXISTS {function}()"))
        for table, name, _ in _CHECKS:
            op.drop_constraint(name, table, type_="check")
