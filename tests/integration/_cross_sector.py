"""A cross-sector study between real node agents in one process, every message recorded; and the same
counts computed the plain way, on pooled data, for comparison."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.pki import make_node_keys
from federation.privacy import StudyPlan, plan_study
from federation.signing import SigningKey, public_key_pem, sign_spec
from federation.spec import StudySpec
from federation.templates import build_spec
from federation.vertical.protocol import Step, StepReply
from federation.vertical.results import choose_pairs
from federation.vertical.run import Released, run_cross_sector
from nodes.agent import NodeAgent
from nodes.config import load_node_config, write_node_config
from schemas import ContractCatalog
from schemas.identity import FINNISH, IdentityRule, canonical_identity_codes, check_identity_codes
from tillit.local import NodeSetup, node_config

SECTORS = ("population_register", "child_welfare", "child_health", "social_services", "education", "employment",
           "health_care")


@dataclass
class Federation:
    root: Path
    agents: dict[str, NodeAgent]
    key: SigningKey
    #: the contracts the nodes follow (built-in, or a team's directories such as a non-Finnish synth run's)
    contracts_dirs: tuple[Path, ...] = ()

    def spec(self, study_id: str, **params: Any) -> tuple[StudySpec, StudyPlan]:
        """The template's spec, with the nodes' identity keys, signed as a coordinator would sign it."""
        catalog = ContractCatalog(self.contracts_dirs)
        spec = build_spec("child_welfare_risk_factors", study_id, "2024", {"municipality": "espoo", **params}, catalog)
        assert spec.cross_sector is not None
        keys = {d: (self.agents[d].config.key_dir / "supernode.pub").read_text().strip() for d in spec.datasets}
        spec = spec.model_copy(update={"cross_sector": spec.cross_sector.model_copy(update={"participants": keys})})
        signed = sign_spec(spec, self.key)
        return signed, plan_study(signed, catalog)


def federation(root: Path, data: Path, epsilon_cap: float = 20.0, contracts_dirs: tuple[Path, ...] = ()) -> Federation:
    key = SigningKey(Ed25519PrivateKey.generate())
    (root / "coordinator.pub").write_bytes(public_key_pem(key.public))
    agents = {}
    for sector in SECTORS:
        dataset = f"espoo/{sector}"
        config = node_config(NodeSetup(dataset, sector, data / "espoo" / f"{sector}.parquet", epsilon_cap=epsilon_cap,
                                       contracts_dirs=contracts_dirs),
                             root / sector, "127.0.0.1:1", None, 1, root / "coordinator.pub", insecure=True)
        config = load_node_config(write_node_config(root / sector / "node.toml", config))
        agent = NodeAgent(config)
        agent.initialise()
        make_node_keys(config.key_dir, "supernode")
        agents[dataset] = agent
    return Federation(root, agents, key, contracts_dirs)


@dataclass
class Recording:
    """Every byte string that crossed the relay, in both directions, with who and which step."""

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    received: list[tuple[str, str, bytes]] = field(default_factory=list)

    def everything(self) -> bytes:
        return b"".join(b for _, _, b in self.sent + self.received)


class InProcessRelay:
    def __init__(self, fed: Federation, spec: StudySpec, record: Recording,
                 tamper: Any = None) -> None:
        self.fed, self.spec, self.record, self.tamper = fed, spec, record, tamper

    def exchange(self, steps: dict[str, Step]) -> dict[str, StepReply]:
        replies = {}
        for dataset, step in steps.items():
            if self.tamper is not None:
                step = self.tamper(dataset, step)
            for blob in step.blobs.values():
                self.record.sent.append((dataset, step.op, blob))
            reply = self.fed.agents[dataset].cross_sector_step(self.spec, step)
            for blob in reply.envelopes.values():
                self.record.received.append((dataset, step.op, blob))
            for name, array in reply.arrays.items():
                self.record.received.append((dataset, step.op, array.tobytes()))
            replies[dataset] = reply
        return replies


def run(fed: Federation, spec: StudySpec, plan: StudyPlan, record: Recording | None = None,
        tamper: Any = None) -> Released:
    record = record or Recording()
    assert spec.cross_sector is not None and plan.cross_sector is not None
    announcements = {d: fed.agents[d].announce(spec) for d in spec.datasets}
    record.received += [(d, "prepare", a) for d, a in announcements.items()]
    cross, cross_plan = spec.cross_sector, plan.cross_sector
    return run_cross_sector(cross, cross_plan, announcements, InProcessRelay(fed, spec, record, tamper),
                            lambda found: choose_pairs(cross, cross_plan, found))


def pooled(data: Path, factors: dict[str, tuple[str, ...]], pairs: list[tuple[str, str]],
           reference: dt.date = dt.date(2024, 12, 31), max_age: int = 17,
           rule: IdentityRule = FINNISH) -> dict[str, Any]:
    """The same counts on pooled data, written independently of the nodes' code: joins on identity codes (in
    their canonical spelling, so that one resident written two ways in two silos is joined)."""
    def valid(frame: pd.DataFrame) -> pd.DataFrame:
        codes = frame["person_id"].astype("str").where(frame["person_id"].notna())
        check, canonical = canonical_identity_codes(pd.Series(codes, dtype="str"), rule)
        return frame.assign(person_id=canonical)[check.valid].drop_duplicates("person_id", keep="first")

    register = valid(pd.read_parquet(data / "espoo" / "population_register.parquet"))
    birth = pd.to_datetime(register["birth_date"])
    age = reference.year - birth.dt.year - ((birth.dt.month > reference.month)
                                            | ((birth.dt.month == reference.month) & (birth.dt.day > reference.day)))
    cohort = register.loc[(age >= 0) & (age <= max_age), ["person_id"]]
    welfare = valid(pd.read_parquet(data / "espoo" / "child_welfare.parquet"))
    table = cohort.assign(y=cohort["person_id"].isin(set(welfare["person_id"])).astype(int))
    for dataset, names in factors.items():
        silo = valid(pd.read_parquet(data / f"{dataset}.parquet", columns=["person_id", *names]))
        table = table.merge(silo, on="person_id", how="left")
    x = {name: table[name].fillna(False).astype(bool).astype(int).to_numpy()
         for names in factors.values() for name in names}
    y = table["y"].to_numpy()
    return {"n": len(table), "cases": int(y.sum()), "x": x, "y": y,
            "exposed": {f: int(v.sum()) for f, v in x.items()},
            "exposed_cases": {f: int((v * y).sum()) for f, v in x.items()},
            "both": {(a, b): int((x[a] * x[b]).sum()) for a, b in pairs},
            "both_cases": {(a, b): int((x[a] * x[b] * y).sum()) for a, b in pairs}}


def identity_codes(path: Path) -> list[str]:
    return [str(c) for c in pd.read_parquet(path, columns=["person_id"])["person_id"].dropna().unique()]


def files_under(root: Path, exclude: tuple[Path, ...] = ()) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not any(p.is_relative_to(e) for e in exclude)]


def numbers(values: dict[Any, tuple[float, float]]) -> dict[Any, float]:
    return {k: v for k, (v, _) in values.items()}


def assert_close(released: dict[Any, tuple[float, float]], exact: dict[Any, int], sds: float = 6.0) -> int:
    """Every released count within ``sds`` of its noise sd of the exact one; returns how many were compared."""
    assert set(released) == set(exact)
    far = {k: (v, exact[k], sd) for k, (v, sd) in released.items() if abs(v - exact[k]) > sds * sd}
    assert far == {}, far
    return len(released)


def gaps(released: dict[Any, tuple[float, float]], exact: dict[Any, int]) -> np.ndarray:
    return np.array([(released[k][0] - exact[k]) / released[k][1] for k in exact])


def signed(fed: Federation, spec: StudySpec) -> tuple[StudySpec, StudyPlan]:
    assert spec.cross_sector is not None
    keys = {d: (fed.agents[d].config.key_dir / "supernode.pub").read_text().strip() for d in spec.datasets}
    spec = spec.model_copy(update={"cross_sector": spec.cross_sector.model_copy(update={"participants": keys})})
    spec = sign_spec(spec, fed.key)
    return spec, plan_study(spec, ContractCatalog())


def pooled_moves(data: Path, by_sector: str, states: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(all residents' moves, the by-sector clients' moves) per (from, to) cell, on pooled data."""
    def valid(frame: pd.DataFrame) -> pd.DataFrame:
        codes = frame["person_id"].astype("str").where(frame["person_id"].notna())
        return frame[check_identity_codes(pd.Series(codes, dtype="str")).valid]

    register = set(valid(pd.read_parquet(data / "espoo" / "population_register.parquet"))["person_id"])
    clients = set(valid(pd.read_parquet(data / "espoo" / f"{by_sector}.parquet"))["person_id"])
    health = valid(pd.read_parquet(data / "espoo" / "health_care.parquet",
                                   columns=["person_id", "year", "health_segment"])).dropna()
    health = health[health["person_id"].isin(register)].sort_values(["person_id", "year"], kind="stable")
    health = health[health.groupby("person_id").cumcount() < 6]
    nxt = health.groupby("person_id")[["year", "health_segment"]].shift(-1)
    moved = (nxt["year"] - health["year"]) == 1
    k = len(states)
    total, served = np.zeros((k, k), dtype=np.int64), np.zeros((k, k), dtype=np.int64)
    for person, start, end in zip(health["person_id"][moved], health["health_segment"][moved], nxt["health_segment"][moved]):
        a, b = states.index(int(start)), states.index(int(end))
        total[a, b] += 1
        if person in clients:
            served[a, b] += 1
    return total, served
