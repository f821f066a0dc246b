"""Shared fixtures: one small synthetic municipality per test session, generated from a fixed seed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from schemas import ContractCatalog
from schemas.synth import SynthConfig, synthesize

SMALL_RESIDENTS = 20_000


@dataclass(frozen=True)
class Municipality:
    root: Path
    truth: dict[str, Any]

    def silo(self, sector: str, municipality: str = "espoo") -> Path:
        return self.root / municipality / f"{sector}.parquet"


@pytest.fixture(scope="session")
def registry() -> ContractCatalog:
    return ContractCatalog()


@pytest.fixture(scope="session")
def municipality(tmp_path_factory: pytest.TempPathFactory) -> Municipality:
    root = tmp_path_factory.mktemp("synth")
    result = synthesize(SynthConfig(out=root, residents=SMALL_RESIDENTS, seed=11))
    return Municipality(root=root, truth=json.loads(result.truth_path.read_text()))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a developer's contract path or node secret."""
    monkeypatch.delenv("TILLIT_CONTRACTS_PATH", raising=False)
    monkeypatch.delenv("TILLIT_NODE_SECRET_FILE", raising=False)
