"""The coordinator's API contract: every request body and every answer, as typed models.

Routes declare these, so the OpenAPI document says what each request takes and each answer holds,
and FastAPI validates every answer against them (a mismatch is a bug the Schemathesis test finds).
Services build plain dicts in these shapes; the web pages read the same services.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from coordinator.lifecycle import StudyStatus

__all__ = [
    "DATASET_ID", "MAX_DATASETS", "PERIOD", "STUDY_ID", "Amount", "AuditEntryOut", "AuditHeadOut", "BalanceOut", "CapSetting",
    "ChainReportOut", "CostPreviewOut", "DatasetCostOut", "DatasetOut", "DecisionOut", "DecisionRequest",
    "EnrollmentOut", "EnrollmentRequest", "HealthOut", "LedgerEntryOut", "LedgerOut", "MunicipalityBalanceOut",
    "MunicipalityCapOut", "NoiseMeaning", "NewPrincipal", "NewPrincipalOut", "NodeOut", "PrincipalOut", "PrivacyOut",
    "RegisterEntryOut", "RegisterOut", "RevokedPrincipalOut",
    "StudyCost", "StudyCreatedOut", "StudyDraft", "StudyOut", "StudyResultOut", "TemplateOut", "Verdict",
    "WhoAmIOut",
]

#: ``<municipality>/<sector>``: how studies and budgets name a silo
DATASET_ID = r"^[a-z0-9_-]{1,48}/[a-z0-9_]{1,48}$"
STUDY_ID = r"^[a-z0-9][a-z0-9_.-]{2,63}$"
PERIOD = r"^[A-Za-z0-9_.-]{1,32}$"
ROLE = r"^(admin|privacy_officer|analyst|node)$"
#: how many datasets one principal may answer for
MAX_DATASETS = 200


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- requests ---------------------------------------------------------------------------------------------------

class StudyDraft(_Body):
    """What an analyst submits. The register shows name, purpose, legal basis, organisation and contact."""

    id: str = Field(pattern=STUDY_ID)
    name: str = Field(min_length=3, max_length=200)
    template: str = Field(max_length=48)
    params: dict[str, Any]
    purpose: str = Field(min_length=10, max_length=4000)
    legal_basis: str = Field(min_length=3, max_length=1000)
    organisation: str = Field(min_length=2, max_length=200)
    contact: str = Field(min_length=3, max_length=200)
    period: str = Field(pattern=PERIOD)


class DecisionRequest(_Body):
    """A privacy officer's approval or rejection; the reason goes into the audit log and the register."""

    reason: str = Field(min_length=3, max_length=2000)


class CapSetting(_Body):
    """A budget for a dataset, or a municipality's cap per resident: as ε at δ, or as ρ (exactly one)."""

    epsilon: float | None = Field(default=None, ge=0.001, le=100, allow_inf_nan=False)
    rho: float | None = Field(default=None, ge=1e-7, le=100, allow_inf_nan=False)
    delta: float = Field(default=1e-6, ge=1e-12, lt=1e-2, allow_inf_nan=False)


class NewPrincipal(_Body):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{1,63}$")
    role: str = Field(pattern=ROLE)
    #: the datasets a privacy officer or node answers for, as municipality/sector (each kept once, sorted)
    datasets: list[Annotated[str, Field(pattern=DATASET_ID)]] = Field(default=[], max_length=MAX_DATASETS)

    @field_validator("datasets")
    @classmethod
    def _once_each(cls, datasets: list[str]) -> list[str]:
        return sorted(set(datasets))


class EnrollmentRequest(_Body):
    """A node enrolls the dataset named in the path: its contract and its SuperNode's public key."""

    contract: str = Field(pattern=r"^[a-z0-9_]{1,48}$")
    #: the SuperNode's public key (OpenSSH), as registered with the SuperLink
    public_key: str = Field(min_length=16, max_length=2000,
                            pattern=r"^(ecdsa-sha2-nistp\d+|ssh-ed25519) [A-Za-z0-9+/=]+( [^\n\r]*)?$")


class Verdict(_Body):
    """What a node may say about its extract: the verdict and counts, nothing else."""

    verdict: str = Field(pattern=r"^(pass|warn|fail)$")
    rows: int = Field(ge=0, le=10**12)
    checks: int = Field(ge=0, le=10**6)
    failed_checks: int = Field(ge=0, le=10**6)
    warnings: int = Field(default=0, ge=0, le=10**6)
    contract_version: str = Field(max_length=32)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


# -- answers ----------------------------------------------------------------------------------------------------

class HealthOut(BaseModel):
    status: str


class WhoAmIOut(BaseModel):
    name: str
    role: str
    datasets: list[str]


class NewPrincipalOut(WhoAmIOut):
    #: shown once; only its SHA-256 is stored
    token: str


class PrincipalOut(WhoAmIOut):
    created_at: str
    revoked: bool


class RevokedPrincipalOut(PrincipalOut):
    """A principal just revoked: its token is answered 401 on every route from now on."""

    revoked_at: str


class Amount(BaseModel):
    rho: float
    rho_units: int
    epsilon: float


class BalanceOut(BaseModel):
    """A budget: the cap set for a dataset (or municipality) and period, what was spent, what is left."""

    name: str
    period: str
    delta: float
    cap: Amount
    spent: Amount
    remaining: Amount


class LedgerEntryOut(Amount):
    id: int
    dataset: str
    period: str
    study_id: str
    at: str


class LedgerOut(BaseModel):
    entries: list[LedgerEntryOut]
    balances: list[BalanceOut]


class EnrollmentOut(BaseModel):
    dataset: str
    contract: str
    enrolled: bool


class NodeOut(BaseModel):
    dataset: str
    public_key: str
    enrolled_at: str


class DatasetOut(BaseModel):
    id: str
    municipality: str
    sector: str
    contract: str
    contract_version: str
    validation: Verdict | None
    validated_at: str | None


class TemplateOut(BaseModel):
    name: str
    title: str
    #: the JSON schema of the template's parameters
    parameters: dict[str, Any]


class NoiseMeaning(BaseModel):
    """What a study's noise means for one dataset's residents, for the privacy officer who approves it."""

    counts_per_resident: int
    #: one standard deviation of the noise that protects this dataset's residents on each released number
    noise_sd: float
    in_words: str


class DatasetCostOut(Amount):
    delta: float
    #: ε of this study alone (the exact Gaussian curve for a study calibrated to it); ``epsilon`` is what the
    #: charge counts as against the budget (OpenDP's zCDP conversion, how budgets add up)
    study_epsilon: float
    noise: NoiseMeaning
    #: the dataset's budget for the study's period, if its privacy officer has set one
    budget: BalanceOut | None
    fits: bool


class MunicipalityCapOut(BalanceOut):
    fits: bool


class MunicipalityBalanceOut(BalanceOut):
    """A municipality's cap per resident over all its silos, for one period, and what was spent against it."""

    municipality: str


class CostPreviewOut(BaseModel):
    """What a study would cost each dataset (computed by the privacy module the nodes use) and what is left."""

    study_id: str
    period: str
    task: str
    per_dataset: dict[str, DatasetCostOut]
    municipality_caps: dict[str, MunicipalityCapOut]
    fits: bool


class StudyCost(Amount):
    pass


class DecisionOut(BaseModel):
    dataset: str
    officer: str
    decision: str
    reason: str
    at: str


class StudyOut(BaseModel):
    id: str
    name: str
    template: str
    params: dict[str, Any]
    purpose: str
    legal_basis: str
    organisation: str
    contact: str
    period: str
    analyst: str
    status: StudyStatus
    datasets: list[str]
    delta: float
    cost: dict[str, StudyCost]
    approvals: list[DecisionOut]
    signed: bool
    created_at: str
    approved_at: str | None
    launched_at: str | None
    finished_at: str | None
    run_id: str | None
    progress: dict[str, Any] | None
    error: dict[str, Any] | None


class StudyCreatedOut(StudyOut):
    preview: CostPreviewOut


class PrivacyOut(BaseModel):
    """The privacy fields every result carries (DESIGN.md); the mechanism's own parameters come along."""

    model_config = ConfigDict(extra="allow")

    rho: float
    epsilon: float
    delta: float
    per_dataset: dict[str, Any]
    mechanism: str


class StudyResultOut(BaseModel):
    """A released study's result JSON: the fields DESIGN.md promises, and the template's outputs."""

    model_config = ConfigDict(extra="allow")

    study_id: str
    template: str
    status: str
    privacy: PrivacyOut
    outputs: dict[str, Any]


class AuditEntryOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
    hash: str


class ChainReportOut(BaseModel):
    intact: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str]


class AuditHeadOut(BaseModel):
    seq: int
    hash: str | None


class RegisterEntryOut(BaseModel):
    """One study in the public register (fields after the Amsterdam and Helsinki algorithm registers)."""

    id: str
    name: str
    purpose: str
    legal_basis: str
    responsible_organisation: str
    contact: str
    template: str
    status: StudyStatus
    data_period: str
    datasets: list[str]
    contract: str
    variables: list[str]
    privacy_unit: str
    privacy: dict[str, dict[str, float]]
    mechanism: str
    output_kinds: list[str]
    human_oversight: list[dict[str, str]]
    dates: dict[str, str | None]


class RegisterOut(BaseModel):
    #: "register" in JSON (a name pydantic's BaseModel already uses)
    register_name: str = Field(alias="register")
    studies: list[RegisterEntryOut]
    audit_head: AuditHeadOut
