"""The synthetic municipality: conforming silos, truth that can be recovered, reproducibility."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nodes.secret import ephemeral_secret
from nodes.validate import ValidateRequest, validate_extract
from schemas import ContractCatalog
from schemas.synth import SECTORS, SynthConfig, synthesize
from tests.conftest import Municipality

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sector", SECTORS)
def test_every_contract_validates_the_generators_output(municipality: Municipality, registry: ContractCatalog,
                                                       sector: str) -> None:
    # Execute
    report, _ = validate_extract(ValidateRequest(
        data=municipality.silo(sector), contract=registry.get(sector), secret=ephemeral_secret()))
    # Assert
    assert report.verdict in ("pass", "warn"), report.summary_line()
    assert report.rows == municipality.truth["rows"]["espoo"][sector]


@pytest.mark.parametrize("sector", ["population_register", "health_care", "education", "social_services"])
def test_report_counts_equal_the_injected_messiness(municipality: Municipality, registry: ContractCatalog,
                                                    sector: str) -> None:
    # Prepare: the generator recorded exactly how many nulls and implausible values it injected
    injected = municipality.truth["messiness"]["counts"]["espoo"][sector]
    # Execute
    report, _ = validate_extract(ValidateRequest(
        data=municipality.silo(sector), contract=registry.get(sector), secret=ephemeral_secret()))
    checks = {c.id: c for c in report.checks}
    # Assert
    assert injected, "the default messiness must give validation something to find"
    check_of = {"null": "null_rate", "outside_warn_range": "plausible_range"}
    for column, counts in injected.items():
        assert set(counts) <= set(check_of), f"{column}: a kind of messiness no check is named for: {counts}"
        for kind, count in counts.items():
            # every injected problem has its check (a missing check fails here, it is not skipped)
            check = checks[f"{column}.{check_of[kind]}"]
            assert check.unexpected == count, (column, kind)
            if kind == "outside_warn_range":
                assert check.status == "warn"


def _empirical_transitions(health: pd.DataFrame) -> pd.DataFrame:
    frame = health.dropna(subset=["health_segment"]).sort_values(["person_id", "year"])
    following = frame.groupby("person_id")[["year", "health_segment"]].shift(-1)
    moved = following["year"] == frame["year"] + 1
    return pd.DataFrame({"status": frame["service_status"][moved],
                         "src": frame["health_segment"][moved].astype(int) - 1,
                         "dst": following["health_segment"][moved].astype(int) - 1})


def test_transition_matrices_are_recoverable_without_noise(municipality: Municipality) -> None:
    # Prepare
    health = pd.read_parquet(municipality.silo("health_care"))
    truth = municipality.truth["health"]["transition_matrices"]
    # Execute
    moves = _empirical_transitions(health)
    # Assert, per service status: the counts fit the true matrix (pooled chi-square over cells with
    # expected count >= 5, p > 1e-6); where a status has >= 20,000 moves, the row-count-weighted
    # mean absolute error is below 0.01; rows with >= 400 moves are within 5 standard errors cell by cell
    from scipy.stats import chi2

    for status, matrix in truth.items():
        true = np.array(matrix)
        sub = moves[moves["status"] == status]
        counts = np.zeros((20, 20))
        np.add.at(counts, (sub["src"].to_numpy(), sub["dst"].to_numpy()), 1)
        n = counts.sum(axis=1)
        expected = true * n[:, None]
        cells = expected >= 5
        statistic = float((((counts - expected) ** 2)[cells] / expected[cells]).sum())
        dof = max(int(cells.sum()) - int(cells.any(axis=1).sum()), 1)
        assert chi2.sf(statistic, df=dof) > 1e-6, (status, statistic, dof)
        observed = counts / np.maximum(n, 1)[:, None]
        if n.sum() >= 20_000:
            # negative control: the same counts are rejected against another status's matrix
            wrong = np.array(truth["intensive" if status != "intensive" else "none"]) * n[:, None]
            wrong_cells = wrong >= 5
            wrong_stat = float((((counts - wrong) ** 2)[wrong_cells] / wrong[wrong_cells]).sum())
            assert chi2.sf(wrong_stat, df=max(int(wrong_cells.sum()) - 20, 1)) < 1e-6, status
            weighted_mae = float((np.abs(observed - true).mean(axis=1) * n).sum() / n.sum())
            assert weighted_mae <= 0.01, (status, weighted_mae)
        big = n >= 400
        bound = 5 * np.sqrt(true[big] * (1 - true[big]) / n[big][:, None]) + 1e-3
        assert (np.abs(observed[big] - true[big]) <= bound).all(), status


def test_child_welfare_model_is_recoverable_from_the_silos(tmp_path: Path) -> None:
    # Prepare: a larger municipality, so that the model's ~36 true terms can be estimated
    from sklearn.linear_model import LogisticRegression

    result = synthesize(SynthConfig(out=tmp_path, residents=150_000, seed=5, messiness=0.0))
    truth = json.loads(result.truth_path.read_text())["child_welfare"]
    root = tmp_path / "espoo"
    people = pd.read_parquet(root / "population_register.parquet")
    age = (pd.Timestamp("2024-12-31") - pd.to_datetime(people["birth_date"])).dt.days / 365.25
    children = people.loc[age < 18, ["person_id"]]
    for sector in ("child_health", "social_services", "education", "employment"):
        silo = pd.read_parquet(root / f"{sector}.parquet")
        children = children.merge(silo[["person_id", *[c for c in silo if "_rf_" in c]]], on="person_id", how="left")
    outcome = children["person_id"].isin(pd.read_parquet(root / "child_welfare.parquet")["person_id"]).to_numpy()
    x = children.drop(columns="person_id").fillna(False).astype(int)
    terms = [t for t in truth["ranking"]]
    design = pd.DataFrame({t["term"]: np.prod([x[f] for f in t["factors"]], axis=0) for t in terms})
    # Execute: fit the correctly specified model on the true support
    fit = LogisticRegression(C=1e6, max_iter=5000).fit(design, outcome)
    # Assert
    estimated = dict(zip(design.columns, fit.coef_[0]))
    true = np.array([t["coefficient"] for t in terms])
    found = np.array([estimated[t["term"]] for t in terms])
    assert abs(fit.intercept_[0] - truth["intercept"]) < 0.25
    assert np.corrcoef(true, found)[0, 1] > 0.8
    top = terms[:8]
    assert all(np.sign(estimated[t["term"]]) == np.sign(t["coefficient"]) for t in top)
    assert sum(abs(t["coefficient"]) > 0 for t in terms) == 36
    assert any(len(t["factors"]) == 2 and truth["coefficients"][t["factors"][0]] == 0 for t in terms)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.parquet"))}


def test_same_seed_same_municipality_and_codes_unique_across_municipalities(tmp_path: Path) -> None:
    # Execute
    config = dict(residents=3_000, municipalities=("espoo", "vantaa", "oulu"), seed=9)
    first = synthesize(SynthConfig(out=tmp_path / "a", **config))  # type: ignore[arg-type]
    synthesize(SynthConfig(out=tmp_path / "b", **config))  # type: ignore[arg-type]
    other = synthesize(SynthConfig(out=tmp_path / "c", **{**config, "seed": 10}))  # type: ignore[arg-type]
    # Assert
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a") != _digests(tmp_path / "c")
    assert set(first.rows) == {"espoo", "vantaa", "oulu"}
    codes = [pd.read_parquet(tmp_path / "a" / m / "population_register.parquet")["person_id"] for m in first.rows]
    assert len(set().union(*map(set, codes))) == 9_000
    districts = pd.read_parquet(tmp_path / "a" / "oulu" / "population_register.parquet")["district"]
    assert districts.str.startswith("oulu_district_").all()


def test_age_structure_is_realistic(municipality: Municipality) -> None:
    people = pd.read_parquet(municipality.silo("population_register"))
    age = (pd.Timestamp("2024-12-31") - pd.to_datetime(people["birth_date"])).dt.days / 365.25
    assert 0.18 < (age < 18).mean() < 0.24
    assert 0.14 < (age >= 65).mean() < 0.21
    assert people["district"].nunique() == 7
