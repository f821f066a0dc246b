"""What a node does when a study asks it for something. Runs inside the node's ClientApp.

For every request: the extract is re-validated if it changed since its last check; the study's cost
is recomputed from the spec itself (not taken from the coordinator); the node's own ledger is
checked — and charged, durably, before anything is released. Only noisy aggregates leave.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.errors import RefusalCode, StudyRefused
from federation.privacy import Balance, ModelPlan, PrivacyLoss, StudyPlan, gaussian_release, make_cap, plan_study
from federation.signing import load_public_key, public_key_pem, verify_spec
from federation.spec import StudySpec
from federation.vertical.protocol import STAGES, Step, StepReply
from nodes.config import NodeConfig
from nodes.cross_sector import CrossSectorNode
from nodes.extract import file_sha256
from nodes.ledger import NodeLedger
from nodes.secret import NodeSecret, create_secret, load_secret
from schemas import Contract, ContractCatalog

if TYPE_CHECKING:  # pandas, pyarrow and scipy load only when a message needs the extract itself:
    import pandas as pd  # a cached training round is answered without them (Flower starts a new

    from federation.tasks import Design  # process for every message, so imports are paid per round)

__all__ = ["RESIDENT", "NodeAgent", "Prepared", "typed_extract"]

RESIDENT = "_resident"


@dataclass(frozen=True)
class Prepared:
    plan: StudyPlan
    loss: PrivacyLoss
    spec_sha256: str
    #: the extract this request is answered from, as validated
    extract_sha256: str


#: Encoded designs a warm node keeps between a study's rounds, keyed by node, contract version, the
#: validated extract's sha256 and the model spec: a changed extract or contract is never read from here.
_DESIGNS: dict[str, Design] = {}
_DESIGNS_KEPT = 2


class NodeAgent:
    """The node's side of every study (it implements :class:`federation.client_app.NodeService`)."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.dataset = config.node.dataset
        self.catalog = ContractCatalog(config.node.contracts_dirs)
        self.contract: Contract = self.catalog.get(config.node.contract)
        self.ledger = NodeLedger(config.ledger_path, config.budget.delta)
        self.cross_sector = CrossSectorNode(self.dataset, self.contract, config.node.data, config.key_dir / "supernode")

    # -- setup -------------------------------------------------------------------------------

    def initialise(self) -> None:
        """Create the node's secret and set its local cap from the config (idempotent)."""
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.config.secret_path.exists():
            create_secret(self.config.secret_path)
        budget = self.config.budget
        self.ledger.set_cap(self.dataset, make_cap(epsilon=budget.epsilon, delta=budget.delta))

    def secret(self) -> NodeSecret:
        return load_secret(self.config.secret_path)

    def ensure_valid(self) -> str:
        """The extract's SHA-256 after making sure it meets its contract; re-validates on change."""
        from nodes.validate import ValidateRequest, validate_extract

        digest = file_sha256(self.config.node.data)
        status = self.config.validation_path
        if status.exists():
            recorded = json.loads(status.read_text())
            if recorded["data"]["sha256"] == digest:
                if recorded["verdict"] == "fail":
                    raise StudyRefused(f"{self.dataset}: the extract breaks contract {self.contract.label}", RefusalCode.CONTRACT_BROKEN)
                return digest
        report, _ = validate_extract(ValidateRequest(
            data=self.config.node.data, contract=self.contract, secret=self.secret(),
            report_path=status, docs_dir=self.config.state_dir / "data-docs"))
        if report.verdict == "fail":
            raise StudyRefused(f"{self.dataset}: the extract breaks contract {self.contract.label} "
                               f"({len(report.failed)} blocking checks)", RefusalCode.CONTRACT_BROKEN)
        return report.sha256

    def latest_verdict(self) -> dict[str, Any] | None:
        """The latest validation's verdict in counts only (what a node may tell the coordinator), if any."""
        if not self.config.validation_path.exists():
            return None
        report = json.loads(self.config.validation_path.read_text())
        summary = report["summary"]
        return {"verdict": report["verdict"], "rows": report["data"]["rows"], "checks": summary["checks"],
                "failed_checks": summary["failed"], "warnings": summary.get("warnings", 0),
                "contract_version": report["contract"]["version"], "sha256": report["data"]["sha256"]}

    # -- a study ------------------------------------------------------------------------------

    def prepare(self, spec: StudySpec) -> Prepared:
        """Everything short of charging: is this node named, does the extract hold, is there budget?"""
        if self.dataset not in spec.datasets or spec.contract_of(self.dataset) != self.contract.name:
            raise StudyRefused(f"{self.dataset}: study {spec.study_id} does not include this dataset", RefusalCode.NOT_PARTICIPATING)
        coordinator = load_public_key(self.config.coordinator.public_key)
        verify_spec(spec, coordinator, self.dataset)
        if spec.audit_anchor is not None:   # a spec from `tillit federation run` (no coordinator) has none
            self.ledger.record_anchor(self.dataset, hashlib.sha256(public_key_pem(coordinator)).hexdigest(),
                                      spec.study_id, spec.audit_anchor)
        extract_sha256 = self.ensure_valid()
        try:
            plan = plan_study(spec, self.catalog)
        except Exception as error:  # a spec the node cannot plan is refused, never computed
            raise StudyRefused(f"{self.dataset}: study {spec.study_id} cannot be planned here ({error})", RefusalCode.MALFORMED_SPEC) from None
        loss = plan.per_dataset[self.dataset]
        spec_sha = hashlib.sha256(spec.canonical_json().encode()).hexdigest()
        self.ledger.check(spec.study_id, self.dataset, loss)
        return Prepared(plan=plan, loss=loss, spec_sha256=spec_sha, extract_sha256=extract_sha256)

    def announce(self, spec: StudySpec) -> bytes:
        """A cross-sector study: check it as ``prepare`` does, open this node's session, announce its key."""
        prepared = self.prepare(spec)
        return self.cross_sector.open_session(spec, prepared.spec_sha256)

    def cross_sector_step(self, spec: StudySpec, step: Step) -> StepReply:
        """One step of a cross-sector study; charged before the first step that sends anything derived from
        this node's data, and each step released once."""
        prepared = self.prepare(spec)
        assert spec.cross_sector is not None and prepared.plan.cross_sector is not None
        if step.op not in STAGES:
            raise StudyRefused(f"{self.dataset}: unknown step {step.op!r}", RefusalCode.MALFORMED_SPEC)

        def release() -> None:
            # called by the step once its inputs are verified, right before anything derived from the data leaves
            self._charge(spec, prepared)
            self.ledger.record_release(spec.study_id, self.dataset, STAGES[step.op])

        return self.cross_sector.step(spec, prepared.plan.cross_sector, step, release)

    def _charge(self, spec: StudySpec, prepared: Prepared) -> None:
        self.ledger.charge(spec.study_id, self.dataset, prepared.loss, prepared.spec_sha256)

    def budget(self) -> Balance:
        """The node's local cap, what it spent and what is left."""
        return self.ledger.balance(self.dataset)

    def record_failure(self) -> None:
        """The current exception's traceback, appended to ``errors.log`` in the node's state directory only."""
        import datetime as dt
        import traceback

        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.config.state_dir / "errors.log", "a", encoding="utf-8") as log:
            log.write(f"--- {dt.datetime.now(dt.timezone.utc).isoformat()}\n{traceback.format_exc()}")

    def table(self, spec: StudySpec) -> np.ndarray:
        prepared = self.prepare(spec)
        table = prepared.plan.table
        assert spec.table is not None and table is not None
        self._charge(spec, prepared)
        self.ledger.record_release(spec.study_id, self.dataset, 1)
        from federation.tasks import cell_counts, transition_rows

        frame = self._frame()
        rows = transition_rows(frame, spec.table.transitions) if spec.table.transitions else frame
        return gaussian_release(cell_counts(rows, table), table.noise_scale)

    def train_round(self, spec: StudySpec, params: np.ndarray, round_: int) -> tuple[np.ndarray, float]:
        """One round of DP-GD from the server's parameters: returns new parameters and the noisy count."""
        prepared = self.prepare(spec)
        model = prepared.plan.model
        assert spec.model is not None and model is not None
        if model.optimizer != "gradient_descent":
            raise StudyRefused(f"{self.dataset}: study {spec.study_id} trains by {model.optimizer}, not gradient "
                               "descent", RefusalCode.MALFORMED_SPEC)
        if not 1 <= round_ <= spec.model.round_count:
            raise StudyRefused(f"{self.dataset}: study {spec.study_id} has {spec.model.round_count} rounds, "
                               f"not {round_}", RefusalCode.ALREADY_RELEASED)
        self._check_params(model, params)
        self._charge(spec, prepared)
        design = self._design(spec, prepared)
        noisy = self.ledger.noisy_count(spec.study_id, self.dataset) if round_ > 1 else None
        if noisy is None:
            if round_ > 1:
                raise StudyRefused(f"{self.dataset}: round {round_} before round 1 of {spec.study_id}", RefusalCode.ALREADY_RELEASED)
            assert model.count_noise_scale is not None
            noisy = float(gaussian_release(np.array([float(design.residents)]), model.count_noise_scale)[0])
        self.ledger.record_release(spec.study_id, self.dataset, round_, noisy if round_ == 1 else None)
        from federation.tasks.logreg import local_training

        return local_training(design, params, spec.model, model, noisy), noisy

    def newton_round(self, spec: StudySpec, params: np.ndarray,
                     round_: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One round of the noisy Newton method at the server's parameters: the noisy sum of clipped gradients,
        the noisy trace of the curvature (one number), and in the plan's curvature rounds the noisy curvature
        (as :func:`federation.tasks.upper_triangle`; an empty array in the other rounds)."""
        prepared = self.prepare(spec)
        model = prepared.plan.model
        assert spec.model is not None and model is not None
        if model.optimizer != "newton":
            raise StudyRefused(f"{self.dataset}: study {spec.study_id} trains by {model.optimizer}, not Newton",
                               RefusalCode.MALFORMED_SPEC)
        if not 1 <= round_ <= model.rounds:
            raise StudyRefused(f"{self.dataset}: study {spec.study_id} has {model.rounds} rounds, "
                               f"not {round_}", RefusalCode.ALREADY_RELEASED)
        self._check_params(model, params)
        self._charge(spec, prepared)
        self.ledger.record_release(spec.study_id, self.dataset, round_)
        from federation.tasks import newton_statistics, upper_triangle

        gradient, hessian, trace = newton_statistics(self._design(spec, prepared), params, model.clipping_norm,
                                                     round_ in model.hessian_rounds)
        noisy_gradient = gaussian_release(gradient.ravel(), model.noise_scale).reshape(gradient.shape)
        noisy_trace = gaussian_release(np.array([trace]), model.trace_noise_scale)
        if hessian is None:
            return noisy_gradient, np.zeros(0), noisy_trace
        return noisy_gradient, gaussian_release(upper_triangle(hessian), model.hessian_noise_scale), noisy_trace

    def evaluate(self, spec: StudySpec, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """After the last round: noisy score histograms and (gradient descent) noisy Fisher information at
        ``params``; Newton releases no Fisher information (an empty array), its curvature is known already."""
        prepared = self.prepare(spec)
        model = prepared.plan.model
        assert spec.model is not None and model is not None
        if model.evaluation is None:
            raise StudyRefused(f"{self.dataset}: study {spec.study_id} releases no evaluation", RefusalCode.ALREADY_RELEASED)
        self._check_params(model, params)
        self._charge(spec, prepared)
        # the evaluation is the release after the last training round; the ledger refuses a second one
        self.ledger.record_release(spec.study_id, self.dataset, spec.model.round_count + 1)
        from federation.tasks import evaluation_statistics

        histogram, fisher = evaluation_statistics(self._design(spec, prepared), params, model.evaluation.bins,
                                                  model.evaluation.prediction_weight, model.evaluation.curvature_weight)
        e = model.evaluation
        noisy_histogram = gaussian_release(histogram.ravel(), e.histogram_noise_scale).reshape(histogram.shape)
        if e.fisher_noise_scale is None:
            return noisy_histogram, np.zeros((0, 0))
        return noisy_histogram, gaussian_release(fisher.ravel(), e.fisher_noise_scale).reshape(fisher.shape)

    def _check_params(self, model: ModelPlan, params: np.ndarray) -> None:
        expected = (len(model.classes) - 1, len(model.features))
        if params.shape != expected:
            raise StudyRefused(f"{self.dataset}: parameters of shape {params.shape}, expected {expected}", RefusalCode.MALFORMED_SPEC)

    # -- data ---------------------------------------------------------------------------------

    def _frame(self) -> "pd.DataFrame":
        return typed_extract(self.config.node.data, self.contract, self.secret().pseudonym_key)

    def _design(self, spec: StudySpec, prepared: Prepared) -> "Design":
        """Encoded training data: kept in memory by a warm node and in the node's own state directory
        between rounds, keyed by node, contract version, the validated extract's hash and the model spec."""
        from federation.tasks.logreg import Design, encode

        assert spec.model is not None
        plan = prepared.plan.model
        assert plan is not None
        identity = (str(self.config.state_dir), self.contract.label, prepared.extract_sha256,
                    spec.model.model_dump_json())
        key = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:24]
        if key in _DESIGNS:
            return _DESIGNS[key]
        path = self.config.cache_dir / f"design-{key}.npz"
        if path.exists():
            with np.load(path) as cached:
                design = Design(x=cached["x"], y=cached["y"], resident=cached["resident"],
                                residents=int(cached["residents"]))
        else:
            frame = self._frame()
            design = encode(frame, frame[RESIDENT], spec.model, self.contract, plan)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, x=design.x, y=design.y, resident=design.resident, residents=design.residents)
        while len(_DESIGNS) >= _DESIGNS_KEPT:
            _DESIGNS.pop(next(iter(_DESIGNS)))
        _DESIGNS[key] = design
        return design


def typed_extract(path: Path, contract: Contract, key: bytes) -> "pd.DataFrame":
    """The pseudonymised, typed extract with at most the contract's rows per resident.

    The resident pseudonym is in column ``_resident``; the contribution bound is enforced here
    whatever validation said (defence in depth).
    """
    from nodes.extract import pseudonymise, read_extract
    from validation import conform

    frame, _ = pseudonymise(read_extract(path).frame, contract, key)
    ident = frame[contract.identifier]
    typed = conform(frame, contract).frame.drop(columns=[contract.identifier])
    for column in contract.expanded_columns:
        if column.type == "category" and column.name in typed:
            typed[column.name] = typed[column.name].astype(object)
    typed.insert(0, RESIDENT, ident.to_numpy())
    typed = typed[typed[RESIDENT].notna()]
    order = [RESIDENT, *[k for k in contract.key if k != contract.identifier]]
    typed = typed.sort_values(order, kind="stable")
    within = typed.groupby(RESIDENT, sort=False).cumcount() < contract.max_rows_per_resident
    return typed[within.to_numpy()]

