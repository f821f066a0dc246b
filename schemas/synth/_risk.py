"""Risk factors held by different sectors and a child-welfare outcome from a known logistic model.

Each sector records binary risk-factor indicators for the residents it serves (a resident the
sector does not serve has every indicator 0). Indicators are correlated through a latent family
vulnerability, as real ones are. For children aged 0-17 the outcome — becoming a child-welfare
client during the outcome year — is drawn from

    logit P(client) = intercept + sum_j beta_j x_j + sum_(j,k) gamma_jk x_j x_k

where a few dozen beta_j are non-zero and some pairs carry signal only as a combination. Given x,
the outcome depends on nothing else, so a correctly specified logistic regression recovers the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from schemas.contract import Contract
from schemas.synth._population import REFERENCE_DATE, Residents

#: sectors holding risk-factor blocks, and who they serve
FACTOR_SECTORS = ("child_health", "social_services", "education", "employment")
OUTCOME_YEAR = REFERENCE_DATE.year
MAIN_EFFECTS = 30
INTERACTIONS_WITH_MAIN = 3
INTERACTIONS_ONLY = 3
TARGET_RATE = 0.045


@dataclass
class FactorModel:
    """The known parameters of the outcome model, keyed by contract column names."""

    factors: list[str]
    intercept: float = 0.0
    coefficients: dict[str, float] = field(default_factory=dict)
    interactions: list[tuple[str, str, float]] = field(default_factory=list)

    def ranking(self) -> list[dict[str, object]]:
        terms: list[dict[str, object]] = [
            {"term": name, "factors": [name], "coefficient": beta}
            for name, beta in self.coefficients.items() if beta != 0.0
        ]
        terms += [{"term": f"{a}:{b}", "factors": [a, b], "coefficient": g} for a, b, g in self.interactions]
        terms.sort(key=lambda t: -abs(float(t["coefficient"])))  # type: ignore[arg-type]
        for rank, term in enumerate(terms, start=1):
            term["rank"] = rank
        return terms


def factor_columns(contract: Contract) -> list[str]:
    """The risk-factor indicator columns a contract declares (boolean columns named *_rf_NNN)."""
    return [c.name for c in contract.expanded_columns if c.type == "boolean" and "_rf_" in c.name]


def members(sector: str, people: Residents, rng: np.random.Generator) -> np.ndarray:
    """Indices of the residents a sector serves."""
    age, z = people.age, people.vulnerability
    n = len(people)
    if sector == "child_health":
        chosen = (age < 18) & (rng.random(n) < 0.98)
    elif sector == "education":
        chosen = (age >= 6) & (age <= 18) & (rng.random(n) < 0.97)
    elif sector == "employment":
        chosen = (age >= 15) & (age <= 67) & (rng.random(n) < 0.8)
    elif sector == "social_services":
        base = np.where(age < 18, -2.0, -2.2)
        chosen = rng.random(n) < 1.0 / (1.0 + np.exp(-(base + 0.9 * z)))
    else:  # pragma: no cover - guarded by FACTOR_SECTORS
        raise ValueError(sector)
    return np.flatnonzero(chosen)


def factor_parameters(columns: list[str], rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Each indicator's prevalence (at mean vulnerability) and its loading on vulnerability."""
    prevalence = rng.uniform(0.01, 0.15, size=len(columns))
    loading = rng.uniform(0.0, 1.0, size=len(columns))
    return {c: {"prevalence_at_mean_vulnerability": round(float(p), 6), "vulnerability_loading": round(float(b), 6)}
            for c, p, b in zip(columns, prevalence, loading)}


def draw_factors(params: dict[str, dict[str, float]], rows: np.ndarray, people: Residents,
                 rng: np.random.Generator) -> np.ndarray:
    """0/1 indicators (rows x columns, in params order) for the given residents."""
    prevalence = np.array([p["prevalence_at_mean_vulnerability"] for p in params.values()])
    loading = np.array([p["vulnerability_loading"] for p in params.values()])
    logit = np.log(prevalence / (1 - prevalence))[None, :] + loading[None, :] * people.vulnerability[rows, None]
    return rng.random((len(rows), len(params))) < 1.0 / (1.0 + np.exp(-logit))  # type: ignore[no-any-return]


def choose_model(factors: list[str], prevalence: dict[str, float], rng: np.random.Generator) -> FactorModel:
    """Pick the signal-carrying factors, their effects and the interaction pairs.

    Pairs that matter only together join two common indicators (prevalence >= 8 %) from the two
    sectors that see nearly every child (child health, education), so a study of realistic size
    can find them; the other sectors' factors carry main effects.
    """
    order = rng.permutation(len(factors))
    main = [factors[i] for i in order[:MAIN_EFFECTS]]
    magnitudes = np.linspace(1.3, 0.3, MAIN_EFFECTS)
    signs = np.where(rng.random(MAIN_EFFECTS) < 0.85, 1.0, -1.0)   # most factors raise the risk
    model = FactorModel(factors=list(factors))
    model.coefficients = {name: 0.0 for name in factors}
    for name, beta in zip(main, magnitudes * signs):
        model.coefficients[name] = round(float(beta), 4)
    pairs: list[tuple[str, str, float]] = []
    with_main = rng.choice(len(main), size=2 * INTERACTIONS_WITH_MAIN, replace=False)
    for a, b in with_main.reshape(-1, 2):
        pairs.append((main[a], main[b], round(float(rng.uniform(0.7, 1.2)), 4)))
    silent = {factors[i] for i in order[MAIN_EFFECTS:]}
    common = [f for f in factors if f in silent and prevalence[f] >= 0.08]
    left = [f for f in common if f.startswith("ch_")]
    right = [f for f in common if f.startswith("ed_")]
    for a, b in zip(rng.permutation(left)[:INTERACTIONS_ONLY], rng.permutation(right)[:INTERACTIONS_ONLY]):
        pairs.append((str(a), str(b), round(float(rng.uniform(1.2, 1.6)), 4)))
    model.interactions = pairs
    return model


def linear_predictor(model: FactorModel, x: np.ndarray) -> np.ndarray:
    """The model's logit without intercept for a 0/1 matrix whose columns follow model.factors."""
    beta = np.array([model.coefficients[f] for f in model.factors])
    eta = x @ beta
    index = {f: i for i, f in enumerate(model.factors)}
    for a, b, gamma in model.interactions:
        eta += gamma * (x[:, index[a]] & x[:, index[b]])
    return eta  # type: ignore[no-any-return]


def calibrate_intercept(eta: np.ndarray, target: float) -> float:
    """The intercept giving the target mean probability (bisection; a known parameter afterwards)."""
    lo, hi = -15.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(mid + eta)))) > target:
            hi = mid
        else:
            lo = mid
    return round((lo + hi) / 2, 6)


def child_welfare(people: Residents, clients: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """The child-welfare extract: one row per child who became a client in the outcome year."""
    n = len(clients)
    start = pd.Timestamp(OUTCOME_YEAR, 1, 1)
    referral = start + pd.to_timedelta(rng.integers(0, 365, size=n), unit="D")
    sources = np.array(["school", "health_care", "police", "social_services", "guardian", "other"], dtype=object)
    services = np.array(["assessment", "open_care_support", "placement", "aftercare"], dtype=object)
    service = services[rng.choice(4, size=n, p=[0.45, 0.4, 0.1, 0.05])]
    return pd.DataFrame({
        "person_id": people.person_id[clients],
        "referral_date": referral,
        "referral_source": sources[rng.choice(6, size=n, p=[0.25, 0.2, 0.2, 0.15, 0.12, 0.08])],
        "service_type": service,
        "urgent_placement": (service == "placement") & (rng.random(n) < 0.3),
    })
