"""A node's part in a cross-sector count study: its keys, its values laid on the cohort list, its releases.

One :class:`CrossSectorNode` per node (kept by the warm ClientApp); one session per running study, in
memory only — the linkage key, the cohort list, the BFV secret key (outcome node) and the node's
laid-out vectors are never written anywhere and are forgotten at ``finish`` (or when the session
expires). Every step re-checks the signed spec, the node's role and its own ledger (the agent does),
and charges before the first step that sends anything derived from the node's data.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common.errors import RefusalCode, StudyRefused
from federation.crypto import (
    Announcement, BfvParameters, EnvelopeError, KeyHolder, NodeEvaluator, StudyKeys, cohort_from_bytes,
    cohort_to_bytes, digest, load_identity_public_key, new_linkage_key, positions, pseudonyms,
)
from federation.crypto.bfv import EncodedVector, EncryptedVector
from federation.crypto.envelope import Envelope
from federation.privacy import CrossSectorPlan, integer_noise
from federation.protocol import pack_blobs, unpack_blobs
from federation.spec import CrossSectorSpec, StudySpec
from federation.vertical.protocol import Step, StepReply, envelope_name, pair_key, parse_pairs

if TYPE_CHECKING:
    import pandas as pd

    from schemas.contract import Contract

__all__ = ["CrossSectorNode", "Session"]

#: a session no step has touched for this long is forgotten (a study that stopped half-way)
SESSION_SECONDS = 2 * 3600


@dataclass
class Session:
    """What one node holds for one running study — in memory only."""

    spec: StudySpec
    keys: StudyKeys
    role: str
    started: float = field(default_factory=time.monotonic)
    cohort: np.ndarray | None = None
    #: outcome node: y on the cohort list; factor node: its factors (columns) on the cohort list
    vector: np.ndarray | None = None
    factors: tuple[str, ...] = ()
    key_holder: KeyHolder | None = None
    evaluator: NodeEvaluator | None = None
    encrypted_y: EncryptedVector | None = None
    #: cross pairs this node finishes: (a, b) -> the partner's product vectors
    partner_vectors: dict[str, bytes] = field(default_factory=dict)

    def forget(self) -> dict[str, str]:
        """Drop every key and list; what remains is a digest of each, for the audit trail."""
        found = {"keys_digest": self.keys.destroy()}
        if self.cohort is not None:
            found["cohort_digest"] = digest(self.cohort)
        self.cohort = self.vector = self.key_holder = self.evaluator = self.encrypted_y = None
        self.partner_vectors.clear()
        return found


class CrossSectorNode:
    """The steps of :mod:`federation.vertical.protocol` as one node plays them."""

    def __init__(self, dataset: str, contract: Contract, data: Path, identity_key: Path) -> None:
        self.dataset = dataset
        self.contract = contract
        self.data = data
        self.identity_key = identity_key
        self.sessions: dict[str, Session] = {}

    # -- prepare --------------------------------------------------------------------------------------------
    def open_session(self, spec: StudySpec, spec_sha256: str) -> bytes:
        """Check this node's place in the study and announce a fresh key for it; returns the announcement."""
        cross = _cross(spec)
        self._expire()
        identity = self._identity()
        listed = cross.participants.get(self.dataset)
        if listed is None:
            raise StudyRefused(f"{self.dataset}: study {spec.study_id} lists no identity key for this node",
                               RefusalCode.MALFORMED_SPEC)
        openssh = (serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        try:
            matches = load_identity_public_key(listed).public_bytes(*openssh) == identity.public_key().public_bytes(*openssh)
        except EnvelopeError:
            matches = False
        if not matches:
            raise StudyRefused(f"{self.dataset}: study {spec.study_id} lists another identity key for this node "
                               "than the one it enrolled", RefusalCode.MALFORMED_SPEC)
        role = cross.role(self.dataset)
        session = self.sessions.get(spec.study_id)
        if session is None or session.spec.canonical_json() != spec.canonical_json():
            session = Session(spec, StudyKeys(spec.study_id, spec_sha256, self.dataset, role), role)
            self.sessions[spec.study_id] = session
        return session.keys.announce(identity).to_bytes()

    # -- the steps ------------------------------------------------------------------------------------------
    def step(self, spec: StudySpec, plan: CrossSectorPlan, step: Step, release: Callable[[], None]) -> StepReply:
        """One step; ``release`` charges the node's ledger and records the step, and is called once the step's
        inputs are verified and before anything derived from the node's data is put into the reply."""
        session = self.sessions.get(spec.study_id)
        if session is None or session.spec.canonical_json() != spec.canonical_json():
            raise StudyRefused(f"{self.dataset}: no prepared session for study {spec.study_id} (a node that "
                               "restarted mid-study cannot continue it)", RefusalCode.MALFORMED_SPEC)
        try:
            if step.op == "keys":
                return self._keys(session, plan, step, release)
            if step.op == "link":
                return self._link(session, plan, step, release)
            if step.op == "factors" and session.role == "factors":
                return self._factors(session, plan, step, release)
            if step.op == "open" and session.role == "outcome":
                return self._open(session, plan, step, release)
            if step.op == "pairs" and session.role == "factors":
                return self._pairs(session, plan, step, release)
            if step.op == "pairs_finish" and session.role == "factors":
                return self._pairs_finish(session, plan, step, release)
            if step.op == "pairs_open" and session.role == "outcome":
                return self._pairs_open(session, plan, step, release)
            if step.op == "finish":
                found = self.sessions.pop(spec.study_id).forget()
                return StepReply(values=dict(found))
        except EnvelopeError as error:
            raise StudyRefused(f"{self.dataset}: {error}", RefusalCode.MALFORMED_SPEC) from None
        raise StudyRefused(f"{self.dataset}: step {step.op!r} is not for the {session.role} node",
                           RefusalCode.MALFORMED_SPEC)

    def _keys(self, session: Session, plan: CrossSectorPlan, step: Step,
              release: Callable[[], None]) -> StepReply:
        cross = _cross(session.spec)
        for dataset in cross.datasets:
            if dataset == self.dataset:
                continue
            if dataset not in step.blobs:
                raise StudyRefused(f"{self.dataset}: no key was announced for {dataset}", RefusalCode.MALFORMED_SPEC)
            announcement = Announcement.from_bytes(step.blobs[dataset])
            if announcement.role != cross.role(dataset):
                raise StudyRefused(f"{self.dataset}: {dataset} announced itself as {announcement.role}, the spec "
                                   f"says {cross.role(dataset)}", RefusalCode.MALFORMED_SPEC)
            session.keys.accept(announcement, load_identity_public_key(cross.participants[dataset]), dataset)
        release()
        if session.role != "cohort":
            return StepReply()
        codes, frame = _linked_rows(self.data, self.contract, [cross.cohort.birth_column])
        age = _age(frame[cross.cohort.birth_column], cross.cohort.reference_date)
        members = codes[(age >= cross.cohort.min_age) & (age <= cross.cohort.max_age)]
        key = new_linkage_key()
        session.cohort = np.unique(pseudonyms(key, session.spec.study_id, members))
        payload = key + cohort_to_bytes(session.cohort)
        envelopes = {envelope_name(d, "cohort", self.dataset): session.keys.seal(d, "cohort", payload).to_bytes()
                     for d in cross.datasets if d != self.dataset}
        size = len(session.cohort) + int(integer_noise(1, plan.noise.cohort)[0])
        return StepReply(values={"cohort_size": size}, envelopes=envelopes)

    def _link(self, session: Session, plan: CrossSectorPlan, step: Step,
              release: Callable[[], None]) -> StepReply:
        cross = _cross(session.spec)
        if session.role == "cohort":
            raise StudyRefused(f"{self.dataset}: the register does not link to its own list", RefusalCode.MALFORMED_SPEC)
        sealed = Envelope.from_bytes(_one(step, "link"))
        if sealed.sender != cross.cohort.dataset:
            raise StudyRefused(f"{self.dataset}: a cohort list must come from {cross.cohort.dataset}",
                               RefusalCode.MALFORMED_SPEC)
        payload = session.keys.open(sealed, "cohort")
        key, session.cohort = payload[:32], cohort_from_bytes(payload[32:])
        release()
        moves = next((f.moves for f in cross.factors if f.dataset == self.dataset), None)
        columns = [] if session.role == "outcome" or moves is not None else list(plan.factors[self.dataset])
        if session.role == "outcome" and cross.outcome.column:
            columns = [cross.outcome.column]
        if moves is not None:
            codes, counts = _linked_moves(self.data, self.contract, moves.time, moves.state, plan.states[self.dataset])
        else:
            codes, frame = _linked_rows(self.data, self.contract, columns)
        at = positions(session.cohort, pseudonyms(key, session.spec.study_id, codes))
        inside = at >= 0
        if session.role == "outcome":
            y = np.zeros(len(session.cohort), dtype=np.int64)
            has = frame[columns[0]].fillna(False).astype(bool).to_numpy() if columns else np.ones(len(codes), bool)
            y[at[inside & has]] = 1
            session.vector = y
            params = _bfv(cross)
            session.key_holder = KeyHolder(params)
            context, blocks = session.key_holder.public_context(), session.key_holder.encrypt(y)
            payload = pack_blobs({"context": context, **{f"y{i}": b for i, b in enumerate(blocks)}})
            envelopes = {envelope_name(f.dataset, "outcome", self.dataset):
                         session.keys.seal(f.dataset, "outcome", payload).to_bytes() for f in cross.factors}
            cases = int(y.sum()) + int(integer_noise(1, plan.noise.outcome_stage1)[0])
            return StepReply(values={"cases": cases}, envelopes=envelopes)
        names = plan.factors[self.dataset]
        x = np.zeros((len(session.cohort), len(names)), dtype=np.int64)
        x[at[inside]] = counts[inside] if moves is not None else frame[columns].fillna(False).astype(bool).to_numpy()[inside]
        session.vector, session.factors = x, names
        return StepReply()

    def _factors(self, session: Session, plan: CrossSectorPlan, step: Step,
                 release: Callable[[], None]) -> StepReply:
        cross = _cross(session.spec)
        sealed = Envelope.from_bytes(_one(step, "factors"))
        if sealed.sender != cross.outcome.dataset:
            raise StudyRefused(f"{self.dataset}: the encrypted outcome must come from {cross.outcome.dataset}",
                               RefusalCode.MALFORMED_SPEC)
        parts = unpack_blobs(session.keys.open(sealed, "outcome"))
        params = _bfv(cross)
        try:
            session.evaluator = NodeEvaluator(parts.pop("context"), params)
            blocks = [parts[f"y{i}"] for i in range(len(parts))]
            session.encrypted_y = session.evaluator.load(blocks)
        except (KeyError, ValueError, RuntimeError) as error:
            raise StudyRefused(f"{self.dataset}: the encrypted outcome is unusable ({type(error).__name__})",
                               RefusalCode.MALFORMED_SPEC) from None
        assert session.vector is not None and session.cohort is not None
        if len(blocks) != params.blocks(len(session.cohort)):
            raise StudyRefused(f"{self.dataset}: the encrypted outcome does not cover the cohort list",
                               RefusalCode.MALFORMED_SPEC)
        release()
        x = session.vector
        sd = plan.noise.factor_stage1[self.dataset]
        exposed = x.sum(axis=0) + integer_noise(x.shape[1], plan.noise.local(self.dataset))
        etas = integer_noise(x.shape[1], sd)
        totals = {name: session.evaluator.total(session.encrypted_y, session.evaluator.encode(x[:, j]), int(etas[j]))
                  for j, name in enumerate(session.factors)}
        envelope = session.keys.seal(cross.outcome.dataset, "totals", pack_blobs(totals))
        return StepReply(arrays={"exposed": exposed.astype(float)},
                         values={"factors": json.dumps(list(session.factors))},
                         envelopes={envelope_name(cross.outcome.dataset, "totals", self.dataset): envelope.to_bytes()})

    def _open(self, session: Session, plan: CrossSectorPlan, step: Step,
              release: Callable[[], None]) -> StepReply:
        cross = _cross(session.spec)
        assert session.key_holder is not None
        sealed_totals = {source.dataset: Envelope.from_bytes(_from(step, source.dataset)) for source in cross.factors}
        opened_totals = {d: unpack_blobs(session.keys.open(e, "totals")) for d, e in sealed_totals.items()}
        release()
        arrays = {}
        for source in cross.factors:
            totals = opened_totals[source.dataset]
            names = plan.factors[source.dataset]
            if list(totals) != list(names):
                raise StudyRefused(f"{self.dataset}: {source.dataset} returned totals for other factors than the "
                                   "study's", RefusalCode.MALFORMED_SPEC)
            opened = np.array([session.key_holder.open_total(totals[name]) for name in names], dtype=np.int64)
            arrays[source.dataset] = (opened + integer_noise(len(names), plan.noise.outcome_stage1)).astype(float)
        return StepReply(arrays=arrays)

    def _pairs(self, session: Session, plan: CrossSectorPlan, step: Step,
               release: Callable[[], None]) -> StepReply:
        cross = _cross(session.spec)
        pairs = _checked_pairs(step, plan)
        holder = plan.holder
        x, evaluator, encrypted_y = session.vector, session.evaluator, session.encrypted_y
        assert x is not None and evaluator is not None and encrypted_y is not None
        release()
        column = {name: j for j, name in enumerate(session.factors)}
        within = [(a, b) for a, b in pairs if holder[a] == holder[b] == self.dataset]
        both = np.array([int((x[:, column[a]] * x[:, column[b]]).sum()) for a, b in within], dtype=np.int64)
        both = both + integer_noise(len(within), plan.noise.factor_stage2)
        etas = integer_noise(len(within), plan.noise.factor_stage2)
        totals = {f"{pair_key(a, b)}|cases": evaluator.total(encrypted_y, evaluator.encode(
            x[:, column[a]] * x[:, column[b]]), int(eta)) for (a, b), eta in zip(within, etas)}
        envelopes = {}
        if totals:
            envelopes[envelope_name(cross.outcome.dataset, "pair-totals", self.dataset)] = session.keys.seal(
                cross.outcome.dataset, "pair-totals", pack_blobs(totals)).to_bytes()
        # first halves of the pairs across nodes whose first factor this node holds
        outgoing: dict[str, dict[str, bytes]] = {}
        for a, b in pairs:
            if holder[a] != self.dataset or holder[b] == self.dataset:
                continue
            vectors = outgoing.setdefault(holder[b], {})
            if f"{a}|cases" not in vectors:
                products, _ = evaluator.products(encrypted_y, evaluator.encode(x[:, column[a]]))
                vectors[f"{a}|cases"] = pack_blobs({str(i): p for i, p in enumerate(products)})
                vectors[f"{a}|both"] = pack_blobs({str(i): c for i, c in enumerate(evaluator.encrypt(x[:, column[a]]))})
        for partner, vectors in outgoing.items():
            envelopes[envelope_name(partner, "pair-vectors", self.dataset)] = session.keys.seal(
                partner, "pair-vectors", pack_blobs(vectors)).to_bytes()
        return StepReply(arrays={"both": both.astype(float)},
                         values={"within": json.dumps([list(p) for p in within])}, envelopes=envelopes)

    def _pairs_finish(self, session: Session, plan: CrossSectorPlan, step: Step,
                      release: Callable[[], None]) -> StepReply:
        cross = _cross(session.spec)
        pairs = _checked_pairs(step, plan)
        holder = plan.holder
        x, evaluator = session.vector, session.evaluator
        assert x is not None and evaluator is not None
        column = {name: j for j, name in enumerate(session.factors)}
        incoming: dict[str, bytes] = {}
        for data in step.blobs.values():
            incoming.update(unpack_blobs(session.keys.open(Envelope.from_bytes(data), "pair-vectors")))
        release()
        mine = [(a, b) for a, b in pairs if holder[b] == self.dataset and holder[a] != self.dataset]
        etas = integer_noise(2 * len(mine), plan.noise.factor_stage2)
        totals = {}
        for n, (a, b) in enumerate(mine):
            try:
                cases = unpack_blobs(incoming[f"{a}|cases"])
                # the flood must cover A's noise: its bound comes from public parameters, not from A
                products = evaluator.load([cases[str(i)] for i in range(len(cases))],
                                          noise_bound=evaluator.product_bound)
                own = unpack_blobs(incoming[f"{a}|both"])
                encrypted_a = evaluator.load([own[str(i)] for i in range(len(own))])
            except (KeyError, ValueError, RuntimeError) as error:
                raise StudyRefused(f"{self.dataset}: the partner's vectors for pair ({a}, {b}) are unusable "
                                   f"({type(error).__name__})", RefusalCode.MALFORMED_SPEC) from None
            own_b = evaluator.encode(x[:, column[b]])
            totals[f"{pair_key(a, b)}|cases"] = evaluator.total(products, own_b, int(etas[2 * n]))
            totals[f"{pair_key(a, b)}|both"] = evaluator.total(encrypted_a, own_b, int(etas[2 * n + 1]))
        envelopes = {}
        if totals:
            envelopes[envelope_name(cross.outcome.dataset, "pair-totals", self.dataset)] = session.keys.seal(
                cross.outcome.dataset, "pair-totals", pack_blobs(totals)).to_bytes()
        return StepReply(envelopes=envelopes)

    def _pairs_open(self, session: Session, plan: CrossSectorPlan, step: Step,
                    release: Callable[[], None]) -> StepReply:
        assert session.key_holder is not None
        names, totals = [], []
        envelopes = [unpack_blobs(session.keys.open(Envelope.from_bytes(data), "pair-totals"))
                     for data in step.blobs.values()]
        release()
        for opened in envelopes:
            for name, ciphertext in opened.items():
                names.append(name)
                totals.append(session.key_holder.open_total(ciphertext))
        if len(names) > 2 * plan.max_pairs:
            raise StudyRefused(f"{self.dataset}: more pair counts than the study allows", RefusalCode.MALFORMED_SPEC)
        noisy = np.array(totals, dtype=np.int64) + integer_noise(len(totals), plan.noise.outcome_stage2)
        return StepReply(arrays={"pairs": noisy.astype(float)}, values={"names": json.dumps(names)})

    # -- helpers --------------------------------------------------------------------------------------------
    def _identity(self) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_ssh_private_key(self.identity_key.read_bytes(), password=None)
        except (OSError, ValueError):
            raise StudyRefused(f"{self.dataset}: this node has no identity key ({self.identity_key.name}); "
                               "run 'tillit node init'", RefusalCode.NODE_FAILED) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise StudyRefused(f"{self.dataset}: the identity key is not an EC key", RefusalCode.NODE_FAILED)
        return key

    def _expire(self) -> None:
        now = time.monotonic()
        for study_id in [s for s, session in self.sessions.items() if now - session.started > SESSION_SECONDS]:
            self.sessions.pop(study_id).forget()


def _cross(spec: StudySpec) -> CrossSectorSpec:
    assert spec.cross_sector is not None
    return spec.cross_sector


def _bfv(cross: CrossSectorSpec) -> BfvParameters:
    he = cross.homomorphic
    return BfvParameters(he.poly_modulus_degree, he.plain_modulus, he.hiding_bits)


def _one(step: Step, label: str) -> bytes:
    if len(step.blobs) != 1:
        raise StudyRefused(f"step {label} carries {len(step.blobs)} envelopes, not one", RefusalCode.MALFORMED_SPEC)
    return next(iter(step.blobs.values()))


def _from(step: Step, sender: str) -> bytes:
    found = [data for data in step.blobs.values() if Envelope.from_bytes(data).sender == sender]
    if len(found) != 1:
        raise StudyRefused(f"no envelope from {sender}", RefusalCode.MALFORMED_SPEC)
    return found[0]


def _checked_pairs(step: Step, plan: CrossSectorPlan) -> list[tuple[str, str]]:
    try:
        pairs = parse_pairs(step.values.get("pairs", "[]"))
    except ValueError:
        raise StudyRefused("the pairs of the study are malformed", RefusalCode.MALFORMED_SPEC) from None
    holder = plan.holder
    if len(pairs) > plan.max_pairs or len(set(pairs)) != len(pairs) or any(
            a not in holder or b not in holder or a >= b for a, b in pairs):
        raise StudyRefused("the pairs asked for are not distinct sorted pairs of the study's factors, or too many",
                           RefusalCode.MALFORMED_SPEC)
    return pairs


def _linked_rows(path: Path, contract: Contract, columns: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """The valid identity codes of the extract in their canonical spelling (first row of each) and the typed
    ``columns`` beside them."""
    import pandas as pd

    from nodes.extract import read_extract
    from schemas.identity import canonical_identity_codes
    from validation import conform

    frame = read_extract(path).frame
    codes = frame[contract.identifier].astype("str").where(frame[contract.identifier].notna())
    check, codes = canonical_identity_codes(pd.Series(codes, dtype="str"), contract.identity_rule)
    valid = check.valid
    typed = conform(frame[[c for c in columns if c in frame.columns]], contract).frame if columns else \
        pd.DataFrame(index=frame.index)
    kept = pd.DataFrame({"_code": codes}).assign(**{c: typed[c] for c in columns})[valid]
    kept = kept.drop_duplicates("_code", keep="first")
    return kept["_code"].to_numpy(dtype=object), kept[columns]


def _linked_moves(path: Path, contract: Contract, time: str, state: str,
                  states: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each valid identity code's (canonical spelling) moves of ``state`` from one ``time`` to the next, counted per
    (from, to) cell (``from`` major), from at most the contract's rows per resident."""
    import pandas as pd

    from nodes.extract import read_extract
    from schemas.identity import canonical_identity_codes
    from validation import conform

    frame = read_extract(path).frame
    codes = frame[contract.identifier].astype("str").where(frame[contract.identifier].notna())
    check, codes = canonical_identity_codes(pd.Series(codes, dtype="str"), contract.identity_rule)
    valid = check.valid
    typed = conform(frame[[time, state]], contract).frame
    data = pd.DataFrame({"_code": codes, "t": typed[time], "s": typed[state]})[valid].dropna()
    data = data.sort_values(["_code", "t"], kind="stable")
    data = data[data.groupby("_code", sort=False).cumcount() < contract.max_rows_per_resident]
    following = data.groupby("_code", sort=False)[["t", "s"]].shift(-1)
    step = following["t"] - data["t"]
    consecutive = (step == 1) if pd.api.types.is_numeric_dtype(data["t"]) else step.notna()
    index = {value: i for i, value in enumerate(states)}
    start = data["s"][consecutive].astype(int).map(index)
    end = following["s"][consecutive].astype(int).map(index)
    known = start.notna() & end.notna()
    unique, owner = np.unique(data["_code"].to_numpy(dtype=object), return_inverse=True)
    cells = (start[known].astype(int) * len(states) + end[known].astype(int)).to_numpy()
    counts = np.zeros((len(unique), len(states) ** 2), dtype=np.int64)
    np.add.at(counts, (owner[consecutive.to_numpy()][known.to_numpy()], cells), 1)
    return unique, counts


def _age(birth: pd.Series, on: dt.date) -> np.ndarray:
    import pandas as pd

    dates = pd.to_datetime(birth)
    before_birthday = (dates.dt.month > on.month) | ((dates.dt.month == on.month) & (dates.dt.day > on.day))
    return np.asarray((on.year - dates.dt.year - before_birthday.astype(int)).fillna(-1), dtype=np.int64)
