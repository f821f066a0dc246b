"""The privacy module: exact ledger amounts, OpenDP accounting, calibration, noise."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from federation.privacy import (
    PrivacyLoss, StudyPlan, epsilon, gaussian_epsilon, gaussian_release, gaussian_rho, plan_study, rho_for_epsilon,
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


def _releases(plan: StudyPlan) -> list[tuple[float, float, int]]:
    """Every Gaussian release a horizontal study's plan makes per dataset: (L2 sensitivity, noise sd, count)."""
    if plan.table is not None:
        return [(plan.table.sensitivity, plan.table.noise_scale, 1)]
    model = plan.model
    assert model is not None
    parts = [(model.clipping_norm, model.noise_scale, model.steps)]
    if model.count_noise_scale is not None:
        parts.append((1.0, model.count_noise_scale, 1))
    if model.hessian_rounds:
        parts += [(model.hessian_sensitivity, model.hessian_noise_scale, len(model.hessian_rounds)),
                  (model.trace_sensitivity, model.trace_noise_scale, model.rounds)]
    if model.evaluation is not None:
        e = model.evaluation
        parts.append((e.histogram_sensitivity, e.histogram_noise_scale, 1))
        if e.fisher_noise_scale is not None:
            parts.append((e.fisher_sensitivity, e.fisher_noise_scale, 1))
    return parts


def _pld_epsilon(parts: list[tuple[float, float, int]], delta: float, pessimistic: bool) -> float:
    """Google dp-accounting's privacy-loss-distribution accountant on the same releases: its pessimistic estimate
    is an upper bound on the true ε (discretised upwards), its optimistic one a lower bound."""
    from dp_accounting.pld import privacy_loss_distribution as pld

    total = None
    for sensitivity, sd, count in parts:
        one = pld.from_gaussian_mechanism(standard_deviation=sd, sensitivity=sensitivity,
                                          pessimistic_estimate=pessimistic, use_connect_dots=pessimistic)
        one = one.self_compose(count) if count > 1 else one
        total = one if total is None else total.compose(one)
    assert total is not None
    return float(total.get_epsilon_for_delta(delta))


_STUDIES = {
    "newton, binary, evaluated": {"outcome": "service_status", "positive": ["home_care", "intensive"],
                                  "features": ["health_segment", "hospital_days", "specialist_visits"],
                                  "evaluate": True},
    "newton, multinomial": {"outcome": "service_status", "features": ["health_segment", "hospital_days"],
                            "rounds": 6},
    "gradient descent, evaluated": {"outcome": "service_status", "positive": ["home_care"],
                                    "features": ["health_segment"], "rounds": 10, "local_steps": 5, "evaluate": True},
}


@pytest.mark.parametrize("target", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("study", [*_STUDIES, "transition table"])
def test_reported_epsilon_is_the_exact_gaussian_curve_and_agrees_with_dp_accounting_pld(
        registry: ContractCatalog, study: str, target: float) -> None:
    # Prepare: a study of Gaussian releases only, calibrated to epsilon = target
    overrides: dict[str, object] = {"privacy": {"epsilon": target, "delta": 1e-6}}
    if study == "transition table":
        overrides |= {"task": "dp_table", "model": None,
                      "table": {"transitions": {"time": "year", "state": "health_segment", "by": "service_status"}}}
    else:
        overrides["model"] = _STUDIES[study]
    plan = plan_study(parse_spec(_spec(**overrides)), registry.get("health_care"))
    parts = _releases(plan)
    # Execute: the same releases in dp-accounting's PLD accountant (upper and lower bound) and the exact curve
    upper, lower = _pld_epsilon(parts, 1e-6, True), _pld_epsilon(parts, 1e-6, False)
    mu = math.sqrt(sum(count * (sensitivity / sd) ** 2 for sensitivity, sd, count in parts))
    exact = _exact_gaussian_epsilon(mu, 1e-6)
    # Assert: the reported epsilon is what the study asked for; never below dp-accounting's pessimistic PLD (nor its
    # optimistic one, nor the exact curve) and within 1 % of it; and the charged rho is OpenDP's composition
    assert plan.exact_gaussian and target * 0.999 <= plan.epsilon <= target
    assert upper <= plan.epsilon <= 1.01 * upper
    assert plan.epsilon >= max(lower, exact)
    assert plan.loss == PrivacyLoss.from_rho(sum(gaussian_rho(s, sd, n) for s, sd, n in parts))
    # and about 7 % less than what the zCDP conversion would report for the same noise (budgets keep that view)
    assert plan.epsilon_zcdp() > 1.05 * plan.epsilon


def test_exact_calibration_adds_less_noise_than_zcdp_for_the_same_epsilon(registry: ContractCatalog) -> None:
    # Prepare: the same study calibrated by the exact Gaussian curve (the default) and by zCDP
    exact = plan_study(parse_spec(_spec()), registry.get("health_care"))
    zcdp = plan_study(parse_spec(_spec(privacy={"epsilon": 1.0, "delta": 1e-6, "accounting": "zcdp"})),
                      registry.get("health_care"))
    # Assert: both spend epsilon 1 by their own curve; the exact one charges more rho and adds ~7 % less noise
    assert exact.epsilon <= 1.0 and zcdp.epsilon <= 1.0
    assert exact.model is not None and zcdp.model is not None
    assert 0.9 < exact.model.noise_scale / zcdp.model.noise_scale < 0.95
    assert exact.loss > zcdp.loss
    assert gaussian_epsilon(float(zcdp.loss.rho), 1e-6) < 0.94


def test_a_spec_serialised_before_the_new_fields_keeps_its_meaning_and_its_signature(
        registry: ContractCatalog) -> None:
    # Prepare: a gradient-descent spec as earlier versions stored and signed it: every field written out, with no
    # optimizer, categorical or accounting (they did not exist), and a signature key
    current = parse_spec(_spec()).model_dump(mode="json")
    stored = dict(current, privacy={"epsilon": 1.0, "delta": 1e-6}, signature=None,
                  model={k: v for k, v in current["model"].items() if k not in ("optimizer", "categorical")}
                  | {"clipping_norm": 1.0})
    signed_then = json.dumps({k: v for k, v in stored.items() if k not in ("signature", "cross_sector", "quorum",
                                                                            "audit_anchor")},
                             sort_keys=True, separators=(",", ":"))
    # Execute
    spec = parse_spec(stored)
    plan = plan_study(spec, registry.get("health_care"))
    # Assert: gradient descent and zCDP as before (same rho as the old calibration), same signed bytes
    assert spec.model is not None and spec.model.method == "gradient_descent" and spec.privacy.accounting is None
    assert spec.canonical_json() == signed_then
    assert not plan.exact_gaussian and plan.epsilon == pytest.approx(1.0, abs=1e-5)
    assert float(plan.loss.rho) == pytest.approx(rho_for_epsilon(1.0, 1e-6), rel=1e-5)
    # a new spec written by hand without those fields gets Newton and the exact curve
    fresh = parse_spec(_spec(model={"outcome": "service_status", "positive": ["home_care"], "features": ["year"]}))
    assert fresh.model is not None and fresh.model.method == "newton"
    assert fresh.privacy.accounting == "exact_gaussian"
