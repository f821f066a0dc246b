"""Sign-in sessions for the web pages.

A row per signed-in browser: the SHA-256 of its session id (the id itself lives only in the browser's HttpOnly
cookie), the principal, and when it was made and last used (idle expiry). Signing out deletes the row; a revoked
principal's rows stop working at once (every lookup checks the principal) and are deleted at its next lookup.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("principal_id", sa.Integer, sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("last_seen_at", sa.String(40), nullable=False),
    )
    op.create_index("web_sessions_by_principal", "web_sessions", ["principal_id"])


def downgrade() -> None:
    op.drop_index("web_sessions_by_principal", "web_sessions")
    op.drop_table("web_sessions")
