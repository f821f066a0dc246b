"""The coordinator's tables (SQLAlchemy 2). The schema itself is created by the migrations.

Amounts of privacy loss are integers of 1e-9 ρ (``federation.privacy.PrivacyLoss``); timestamps
are ISO-8601 UTC strings so that what the audit chain hashes is exactly what is stored. The
ledger and the audit log are append-only: the code never updates or deletes them, and the
migration adds database triggers that refuse it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Approval", "AuditEntry", "Base", "Budget", "ChainHead", "Dataset", "LedgerEntry", "MunicipalityCap",
           "Node", "Principal", "Study", "WebSession"]


class Base(DeclarativeBase):
    pass


class Principal(Base):
    __tablename__ = "principals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    #: SHA-256 of the bearer token; the token itself is shown once and never stored
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: JSON list of dataset ids: what a privacy officer answers for, or what a node holds
    datasets: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[str] = mapped_column(String(40))
    revoked_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"))
    dataset: Mapped[str] = mapped_column(String(96), unique=True)
    public_key: Mapped[str] = mapped_column(Text)
    enrolled_at: Mapped[str] = mapped_column(String(40))


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    municipality: Mapped[str] = mapped_column(String(48))
    sector: Mapped[str] = mapped_column(String(48))
    contract: Mapped[str] = mapped_column(String(48))
    contract_version: Mapped[str] = mapped_column(String(32))
    #: the node's latest validation verdict: counts only (JSON)
    verdict: Mapped[str | None] = mapped_column(Text, nullable=True)
    verdict_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class _Cap:
    """A cap as set by someone for a data period; the latest row for a (subject, period) is in force."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(32))
    cap_units: Mapped[int] = mapped_column(BigInteger)
    delta: Mapped[float] = mapped_column(Float)
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[str] = mapped_column(String(40))


class Budget(_Cap, Base):
    """A dataset's budget for a data period."""

    __tablename__ = "budgets"

    dataset: Mapped[str] = mapped_column(String(96))


class MunicipalityCap(_Cap, Base):
    """An optional cap on the sum of charges over all of a municipality's datasets (per resident)."""

    __tablename__ = "municipality_caps"

    municipality: Mapped[str] = mapped_column(String(48))


class LedgerEntry(Base):
    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("study_id", "dataset", "period", name="one_charge_per_study_dataset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    period: Mapped[str] = mapped_column(String(32))
    study_id: Mapped[str] = mapped_column(String(64))
    units: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[str] = mapped_column(String(40))


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(48))
    params: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    organisation: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(32))
    analyst: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    #: the study spec (JSON); signed once every dataset's privacy officer approved
    spec: Mapped[str] = mapped_column(Text)
    #: ρ units per dataset as previewed (JSON)
    cost: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(40))
    approved_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    launched_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    finished_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    progress: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("study_id", "dataset", name="one_decision_per_dataset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"))
    dataset: Mapped[str] = mapped_column(String(96))
    officer: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[str] = mapped_column(String(40))


class AuditEntry(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


class ChainHead(Base):
    """One row: the audit chain's last entry. Locking it serialises appends on PostgreSQL."""

    __tablename__ = "chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class WebSession(Base):
    """A signed-in browser (``coordinator.web.sessions``): only a hash of its session id is stored."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"))
    created_at: Mapped[str] = mapped_column(String(40))
    last_seen_at: Mapped[str] = mapped_column(String(40))
