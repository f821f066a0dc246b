"""The generic logistic-regression template on a contract a team wrote itself, over real Flower processes:
it recovers the sign and rank of the strongest true coefficients, and reports only aggregates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from federation.templates import build_spec
from schemas import ContractCatalog
from schemas.synth import make_identity_codes
from tillit.local import LocalFederation, NodeSetup

pytestmark = pytest.mark.integration

CONTRACT = """
format: 1
name: elderly_care
version: 0.1.0
sector: elderly_care
title: Elderly care assessments (written by the team, not built in)
description: One row per assessed resident aged 65 or more.
identifier: person_id
max_rows_per_resident: 1
key: [person_id]
min_rows: 1
columns:
  - name: person_id
    type: identity_code
    privacy: direct_identifier
  - name: age
    type: integer
    privacy: quasi_identifier
    range: [65, 105]
  - name: falls
    type: integer
    privacy: sensitive
    range: [0, 10]
  - name: lives_alone
    type: boolean
    privacy: sensitive
  - name: memory_score
    type: integer
    privacy: sensitive
    range: [0, 30]
  - name: needs_home_care
    type: boolean
    privacy: sensitive
"""
#: true log-odds per unit of each feature scaled to [0, 1] by its contract range
TRUTH = {"age": 3.0, "falls": 2.0, "memory_score": -1.2, "lives_alone": 0.4}
INTERCEPT = -1.5


def _silo(path: Path, residents: int, seed: int) -> None:
    rng = np.random.default_rng(seed)   # test data, not privacy noise
    age = rng.integers(65, 106, residents)
    births = pd.Series(pd.to_datetime("2024-12-31") - pd.to_timedelta((age * 365.25).astype(int), unit="D"))
    falls = rng.integers(0, 11, residents)
    alone = rng.random(residents) < 0.4
    memory = rng.integers(0, 31, residents)
    logit = (INTERCEPT + TRUTH["age"] * (age - 65) / 40 + TRUTH["falls"] * falls / 10
             + TRUTH["memory_score"] * memory / 30 + TRUTH["lives_alone"] * alone)
    outcome = rng.random(residents) < 1 / (1 + np.exp(-logit))
    pd.DataFrame({"person_id": make_identity_codes(births, rng.random(residents) < 0.5, rng), "age": age,
                  "falls": falls, "lives_alone": alone, "memory_score": memory,
                  "needs_home_care": outcome}).to_parquet(path)


def test_a_team_contract_model_recovers_the_strongest_coefficients(tmp_path: Path) -> None:
    # Prepare: the team's contract as a file, two municipalities' silos, the study from the template
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "elderly_care.yaml").write_text(CONTRACT)
    registry = ContractCatalog([contracts])
    for seed, municipality in enumerate(("espoo", "vantaa")):
        (tmp_path / municipality).mkdir()
        _silo(tmp_path / municipality / "elderly_care.parquet", 15_000, seed)
    spec = build_spec("logistic_regression", "home-care-needs", "2024",
                      {"contract": "elderly_care", "municipalities": ["espoo", "vantaa"], "epsilon": 1.0,
                       "outcome": "needs_home_care",
                       "features": list(TRUTH), "rounds": 6, "local_steps": 15}, registry)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.model_dump_json())
    nodes = [NodeSetup(f"{m}/elderly_care", "elderly_care", tmp_path / m / "elderly_care.parquet",
                       contracts_dirs=(contracts,)) for m in ("espoo", "vantaa")]
    # Execute
    with LocalFederation(tmp_path / "fed", nodes) as fed:
        result = fed.run(spec_path, timeout=900)
    # Assert: the three strongest true effects keep their sign and their order of size
    assert result["status"] == "completed", result.get("error")
    found = result["outputs"]["coefficients"]["True"]
    strongest = sorted(TRUTH, key=lambda f: -abs(TRUTH[f]))[:3]
    assert all(np.sign(found[f]) == np.sign(TRUTH[f]) for f in strongest), found
    assert sorted(strongest, key=lambda f: -abs(found[f])) == strongest, found
    # only aggregates: no per-resident score, no identifier anywhere in the result
    text = json.dumps(result)
    assert "person_id" not in text and len(result["outputs"]["parameters"][0]) == len(TRUTH) + 1
