"""Templates turn an analyst's parameters into a spec, and refuse what the contract forbids."""

from __future__ import annotations

import pytest

from common.errors import UsageError
from federation.privacy import plan_study
from federation.templates import build_spec
from schemas import ContractCatalog


def test_transitions_template_builds_a_transition_table_per_municipality(registry: ContractCatalog) -> None:
    spec = build_spec("health_transitions", "t-1", "2024", {"municipalities": ["espoo", "vantaa"]}, registry)
    assert spec.task == "dp_table" and spec.datasets == ("espoo/health_care", "vantaa/health_care")
    assert spec.table is not None and spec.table.transitions is not None
    assert (spec.table.transitions.state, spec.table.transitions.by) == ("health_segment", "service_status")
    assert spec.period == "2024" and spec.signature is None


def test_logistic_regression_clips_at_the_contracts_rows_per_resident(registry: ContractCatalog) -> None:
    # Prepare: the same study by gradient descent (asked for by name, or by a DP-GD knob as before) and by default
    base = {"contract": "health_care", "municipalities": ["espoo"], "outcome": "service_status",
            "positive": ["home_care", "intensive"], "features": ["health_segment"]}
    # Execute
    named = build_spec("logistic_regression", "m-1", "2024", base | {"optimizer": "gradient_descent"}, registry)
    knob = build_spec("logistic_regression", "m-2", "2024", base | {"local_steps": 3}, registry)
    default = build_spec("logistic_regression", "m-3", "2024", base, registry)
    # Assert: gradient descent clips at the contract's rows per resident; Newton, the default, at half the
    # largest gradient one resident can have (6 rows, each |x| <= sqrt(2): 6 sqrt(2) / 2)
    rows = registry.get("health_care").max_rows_per_resident
    for spec in (named, knob):
        assert spec.model is not None and spec.model.method == "gradient_descent"
        assert spec.model.clipping_norm == rows
    assert default.model is not None and default.model.method == "newton" and default.model.clipping_norm is None
    plan = plan_study(default, registry)
    assert plan.model is not None and plan.model.clipping_norm == pytest.approx(rows * 2 ** 0.5 / 2)


@pytest.mark.parametrize(("params", "words"), [
    ({"outcome": "person_id", "features": ["health_segment"]}, "direct identifier"),
    ({"outcome": "service_status", "features": ["person_id"]}, "direct identifier"),
    ({"outcome": "service_status", "features": ["shoe_size"]}, "has no column 'shoe_size'"),
    ({"outcome": "service_status", "features": ["service_status"]}, "both the outcome and a feature"),
    ({"outcome": "service_status", "features": ["hospital_days"], "categorical": ["health_segment"]},
     "not among the features"),
])
def test_forbidden_choices_are_refused(registry: ContractCatalog, params: dict[str, object], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        build_spec("logistic_regression", "m-2", "2024",
                   {"contract": "health_care", "municipalities": ["espoo"], **params}, registry)


def test_unknown_templates_and_parameters_are_named(registry: ContractCatalog) -> None:
    with pytest.raises(UsageError, match="unknown template 'forecast'"):
        build_spec("forecast", "x-1", "2024", {}, registry)
    with pytest.raises(UsageError, match="municipalities"):
        build_spec("health_transitions", "x-2", "2024", {"epsilon": 1.0}, registry)


def test_ordinal_shrinkage_needs_an_ordinal_state(registry: ContractCatalog) -> None:
    # Prepare: service status is a category, so its moves have no "up" and "down" to pool
    contract = registry.get("health_care")
    params = {"municipalities": ["espoo"], "state": "service_status", "by": None}
    shrunk = build_spec("health_transitions", "t-2", "2024", params, registry)
    raw = build_spec("health_transitions", "t-3", "2024", {**params, "estimator": "raw"}, registry)
    # Execute / Assert: the default is refused with the way out named; the row-by-row estimator plans
    with pytest.raises(UsageError, match="ordinal .* use estimator raw"):
        plan_study(shrunk, contract)
    assert plan_study(raw, contract).table is not None
    default = build_spec("health_transitions", "t-4", "2024", {"municipalities": ["espoo"]}, registry)
    assert default.table is not None and default.table.transitions is not None
    assert default.table.transitions.estimator == "ordinal_shrinkage"


def test_an_integer_feature_taken_as_categories_gets_one_coefficient_per_level(registry: ContractCatalog) -> None:
    # Prepare: the segment as categories, hospital days as a scaled number
    base = {"contract": "health_care", "municipalities": ["espoo"], "outcome": "service_status",
            "positive": ["home_care", "intensive"], "features": ["health_segment", "hospital_days"]}
    # Execute
    spec = build_spec("logistic_regression", "m-4", "2024", base | {"categorical": ["health_segment"]}, registry)
    plan = plan_study(spec, registry)
    # Assert: one column per level of the contract's range [1, 20], none scaled; the number still scaled
    assert plan.model is not None
    assert plan.model.features[:20] == tuple(f"health_segment={v}" for v in range(1, 21))
    assert plan.model.features[20:] == ("hospital_days", "(intercept)")
    assert [name for name, _ in plan.model.scaling] == ["hospital_days"]


@pytest.mark.parametrize(("feature", "words"), [("hospital_days", "more than 200 values"),
                                                ("service_status", "category, not an integer")])
def test_only_integers_with_a_small_range_can_be_categories(registry: ContractCatalog, feature: str,
                                                            words: str) -> None:
    spec = build_spec("logistic_regression", "m-5", "2024",
                      {"contract": "health_care", "municipalities": ["espoo"], "outcome": "health_segment",
                       "positive": ["1"], "features": [feature], "categorical": [feature]}, registry)
    with pytest.raises(UsageError, match=words):
        plan_study(spec, registry)
