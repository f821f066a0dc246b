"""The privacy module: exact ledger amounts, OpenDP accounting, calibration, noise."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from federation.privacy import (
    PrivacyLoss, epsilon, gaussian_release, gaussian_rho, plan_study, rho_for_epsilon,
)
from common.errors import UsageError
from federation.spec import parse_spec
from schemas import ContractCatalog


def _spec(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "study_id": "s1", "task": "dp_logreg", "contract": "health_care",
        "datasets": ["espoo/health_care", "vantaa/health_care"], "privacy": {"epsilon": 1.0, "delta": 1e-6},
        "model": {"outcome": "service_status", "positive": ["home_care"], "features": ["health_segment"],
                  "rounds": 10, "local_steps": 5},
    }
    return base | overrides


def test_ledger_amounts_are_exact_and_round_up() -> None:
    # Prepare: a float that is not a whole number of units
    loss = PrivacyLoss.from_rho(0.1 + 0.2)
    # Execute: summing many charges
    total = PrivacyLoss.zero()
    for _ in range(10_000):
        total = total + loss
    # Assert
    assert loss.rho >= Fraction(0.1 + 0.2)
    assert total.units == 10_000 * loss.units
    assert PrivacyLoss.from_rho(Fraction(1, 3)).units == 333_333_334
    with pytest.raises(ValueError):
        PrivacyLoss(-1)


def test_epsilon_and_rho_calibration_are_inverse_and_monotone() -> None:
    rho = rho_for_epsilon(1.0, 1e-6)
    assert epsilon(rho, 1e-6) == pytest.approx(1.0, abs=1e-9)
    assert epsilon(rho * 1.01, 1e-6) > 1.0
    assert epsilon(0.5, 1e-6) < epsilon(1.0, 1e-6) < epsilon(1.0, 1e-9)
    # tighter than the classic conversion rho + 2 sqrt(rho ln(1/delta))
    assert epsilon(0.5, 1e-6) < 0.5 + 2 * math.sqrt(0.5 * math.log(1e6))


def _exact_gaussian_epsilon(mu: float, delta: float) -> float:
    """Exact (epsilon, delta) of a mu-GDP mechanism (composed Gaussians compose exactly)."""
    def gap(eps: float) -> float:
        return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - delta)
    return brentq(gap, 0.0, 500.0)


def _rdp_epsilon(noise_multiplier: float, steps: int, delta: float, orders: list[float] | None = None) -> float:
    import dp_accounting

    accountant = dp_accounting.rdp.RdpAccountant(orders=orders) if orders else dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier), steps)
    return float(accountant.get_epsilon(delta))


def _rdp_epsilon_at_best_order(noise_multiplier: float, steps: int, delta: float) -> float:
    """dp-accounting's RDP bound at the best real Rényi order (its default is the best order of a fixed grid)."""
    from scipy.optimize import minimize_scalar

    import dp_accounting

    grid = dp_accounting.rdp.RdpAccountant()
    grid.compose(dp_accounting.GaussianDpEvent(noise_multiplier), steps)
    _, grid_order = grid.get_epsilon_and_optimal_order(delta)
    found = minimize_scalar(lambda order: _rdp_epsilon(noise_multiplier, steps, delta, [order]),
                            bounds=(1.0001, 4 * max(grid_order, 2.5)), method="bounded", options={"xatol": 1e-12})
    return float(found.fun)


@pytest.mark.parametrize(("noise_multiplier", "steps"),
                         [(1.0, 100), (5.0, 300), (20.0, 1000), (32.4, 50), (3.0, 7), (0.7, 1), (55.0, 2500)])
def test_dpgd_epsilon_matches_dp_accounting_rdp_and_never_falls_below_it(noise_multiplier: float, steps: int) -> None:
    # Prepare: the same Gaussian mechanism and number of steps in Google's dp-accounting (RDP), on its default
    # order grid and at the best real order (the tightest bound that accountant can give)
    on_grid = _rdp_epsilon(noise_multiplier, steps, 1e-6)
    at_best_order = _rdp_epsilon_at_best_order(noise_multiplier, steps, 1e-6)
    # Execute: our module (OpenDP composition + OpenDP conversion)
    ours = epsilon(gaussian_rho(1.0, noise_multiplier, steps), 1e-6)
    # Assert: within 1 % of the grid answer, never below dp-accounting at any order, and never below the exact
    # privacy loss of the composed Gaussian
    assert abs(ours - on_grid) / on_grid <= 0.01
    assert ours >= at_best_order
    assert ours <= on_grid
    exact = _exact_gaussian_epsilon(math.sqrt(steps) / noise_multiplier, 1e-6)
    assert ours >= exact


def test_plan_charges_the_target_budget_on_every_dataset(registry: ContractCatalog) -> None:
    # Execute
    plan = plan_study(parse_spec(_spec()), registry.get("health_care"))
    # Assert
    assert plan.epsilon <= 1.0 and plan.epsilon == pytest.approx(1.0, abs=1e-5)
    assert set(plan.per_dataset) == {"espoo/health_care", "vantaa/health_care"}
    assert plan.model is not None and plan.model.steps == 50
    assert plan.mechanism["mechanism"] == "gaussian" and plan.mechanism["clipping_norm"] == 1.0
    composed = gaussian_rho(1.0, plan.model.count_noise_scale) + gaussian_rho(1.0, plan.model.noise_scale, 50)
    assert plan.loss == PrivacyLoss.from_rho(composed)


def test_transition_table_sensitivity_follows_the_contract_bound(registry: ContractCatalog) -> None:
    spec = parse_spec(_spec(task="dp_table", model=None,
                            table={"transitions": {"time": "year", "state": "health_segment", "by": "service_status"}}))
    plan = plan_study(spec, registry.get("health_care"))
    assert plan.table is not None
    assert len(plan.table.cells) == 4 * 20 * 20
    assert plan.table.sensitivity == 5.0   # six yearly rows: at most five moves per resident
    assert gaussian_rho(5.0, plan.table.noise_scale) == pytest.approx(float(plan.loss.rho), rel=1e-6)


@pytest.mark.parametrize(("model", "message"), [
    ({"outcome": "service_status", "positive": ["x"], "features": ["person_id"]}, "direct identifier"),
    ({"outcome": "person_id", "features": ["year"]}, "direct identifier"),
    ({"outcome": "service_status", "features": ["no_such"]}, "not a column"),
])
def test_plans_refuse_identifiers_and_unknown_columns(registry: ContractCatalog, model: dict[str, object],
                                                      message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plan_study(parse_spec(_spec(model=model)), registry.get("health_care"))


def test_noise_comes_from_opendp_with_the_requested_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: watch which OpenDP measurement releases the values, and seed numpy's global generators
    # (noise drawn with numpy would then repeat)
    from federation.privacy import _noise

    built: list[tuple[int, float]] = []
    real = _noise.gaussian_measurement

    def watched(dimension: int, scale: float) -> object:
        built.append((dimension, scale))
        return real(dimension, scale)

    monkeypatch.setattr(_noise, "gaussian_measurement", watched)
    # Execute: many noisy releases of zeros
    np.random.seed(0)
    draws = gaussian_release(np.zeros(20_000), 3.0)
    np.random.seed(0)
    again = gaussian_release(np.zeros(20_000), 3.0)
    # Assert: released by OpenDP's Gaussian measurement at that scale; centred, right spread, never repeated
    assert built == [(20_000, 3.0), (20_000, 3.0)]
    assert abs(draws.mean()) < 0.1
    assert draws.std() == pytest.approx(3.0, rel=0.03)
    assert not np.array_equal(draws, again)
    with pytest.raises(ValueError, match="non-finite"):
        gaussian_release(np.array([np.nan]), 1.0)


def test_calibration_terminates_and_stays_within_budget_for_tiny_and_large_epsilons() -> None:
    # a tiny epsilon once made the bracket collapse to zero and the search loop forever
    for target in (0.001, 0.01, 20.0, 100.0):
        rho = rho_for_epsilon(target, 1e-6)
        assert 0 < rho and epsilon(rho, 1e-6) <= target
        assert epsilon(rho * 1.001, 1e-6) > target
