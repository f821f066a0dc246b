"""`tillit federation run --contracts DIR` end to end: a team's own contract file (its residents keyed by
pseudonyms made upstream) reaches every node and the ServerApp of a real federation; an unknown contract
stops the command before any process starts."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

CONTRACT = """\
format: 1
name: elderly_falls
version: 0.1.0
sector: elderly_care
title: Falls among home-care clients (a team's own contract, not built in)
identifier: client_key
max_rows_per_resident: 1
key: [client_key]
columns:
  - name: client_key
    type: identity_code
    privacy: direct_identifier
    format: opaque
    pattern: "hc-[0-9a-f]{16}"
    max_length: 19
    description: pseudonymised by the home-care register before export; hashed again by the node
  - name: falls
    type: integer
    privacy: sensitive
    range: [0, 5]
  - name: lives_alone
    type: boolean
    privacy: sensitive
"""
MUNICIPALITIES = ("espoo", "vantaa")


def _silo(path: Path, residents: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)   # test data, not privacy noise
    keys = [f"hc-{hashlib.sha256(f'{seed}/{i}'.encode()).hexdigest()[:16]}" for i in range(residents)]
    frame = pd.DataFrame({"client_key": keys, "falls": rng.integers(0, 6, residents),
                          "lives_alone": rng.random(residents) < 0.4})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return frame


def _spec(path: Path, contract: str) -> Path:
    path.write_text(json.dumps({
        "study_id": "falls-2024", "task": "dp_table", "contract": contract,
        "datasets": [f"{m}/elderly_care" for m in MUNICIPALITIES], "privacy": {"epsilon": 1.0, "delta": 1e-6},
        "table": {"group_by": ["falls", "lives_alone"]}}))
    return path


def _tillit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tillit", *args], capture_output=True, text=True, timeout=600,
                          check=False)


def test_federation_run_with_a_team_contract_directory_runs_end_to_end(tmp_path: Path) -> None:
    # Prepare: the team's contract file and two municipalities' extracts keyed by upstream pseudonyms
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "elderly_falls.yaml").write_text(CONTRACT)
    frames = [_silo(tmp_path / "data" / m / "elderly_care.parquet", 3000, seed) for seed, m in enumerate(MUNICIPALITIES)]
    # Execute: the real command, in its own process
    done = _tillit("federation", "run", "--spec", str(_spec(tmp_path / "spec.json", "elderly_falls")),
                   "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--contracts", str(contracts))
    # Assert: the study completed on both nodes, each cell within 6 sd of the pooled count
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next((tmp_path / "run" / "results").rglob("result.json")).read_text())
    assert result["status"] == "completed" and set(result["privacy"]["per_dataset"]) == {
        f"{m}/elderly_care" for m in MUNICIPALITIES}
    pooled = pd.concat(frames).groupby(["falls", "lives_alone"]).size()
    cells = result["outputs"]["cells"]
    sd = result["outputs"]["noise_sd_per_cell"]
    assert len(cells) == 12
    assert all(abs(c["count"] - pooled[(c["falls"], c["lives_alone"])]) < 6 * sd for c in cells), (cells, sd)
    # each node validated its extract against the team's contract, with the opaque key rule
    for municipality in MUNICIPALITIES:
        report = json.loads(next((tmp_path / "run" / "nodes" / f"{municipality}-elderly_care").rglob(
            "validation.json")).read_text())
        check = next(c for c in report["checks"] if c["kind"] == "identity_code")
        assert report["verdict"] == "pass" and check["description"].startswith("valid pseudonymous resident keys")
    # no key, pseudonym made upstream, leaves a node in the result
    text = json.dumps(result)
    assert "client_key" not in text and not any(k in text for f in frames for k in f["client_key"].head(100))


def test_federation_run_with_an_unknown_contract_starts_nothing(tmp_path: Path) -> None:
    # Prepare: extracts in place, but the team's contract directory not given
    for seed, municipality in enumerate(MUNICIPALITIES):
        _silo(tmp_path / "data" / municipality / "elderly_care.parquet", 50, seed)
    # Execute
    done = _tillit("federation", "run", "--spec", str(_spec(tmp_path / "spec.json", "elderly_falls")),
                   "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"))
    # Assert: one line, exit 2, and no SuperLink or SuperNode was started (nothing under --out at all)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "unknown contract 'elderly_falls'" in done.stderr
    assert "Traceback" not in done.stderr and "starting a SuperLink" not in done.stdout
    assert not (tmp_path / "run").exists()
