"""Core (non-risk-factor) columns of the service sectors, for the residents each one serves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas.synth._population import REFERENCE_DATE, Residents


def social_services(people: Residents, rows: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(rows)
    z = people.vulnerability[rows]
    ref = pd.Timestamp(REFERENCE_DATE)
    lived_years = (ref - people.birth_date.iloc[rows]).dt.days.to_numpy() / 365.0
    years_back = np.minimum(rng.exponential(4.0, n), lived_years)
    since = ref - pd.to_timedelta((years_back * 365).astype(np.int64), unit="D")
    elderly = people.age[rows] >= 75
    return pd.DataFrame({
        "person_id": people.person_id[rows],
        "client_since": pd.Series(since).clip(lower=pd.Timestamp("1990-01-01")),
        "income_support_months": np.clip(rng.poisson(np.exp(0.3 + 0.5 * z)), 0, 12),
        "housing_support": rng.random(n) < 0.08 + 0.05 * (z > 1),
        "substance_abuse_services": rng.random(n) < 0.04 + 0.06 * (z > 1.5),
        "family_work": (people.age[rows] < 18) & (rng.random(n) < 0.3),
        "home_care_hours": np.where(elderly, np.minimum(rng.gamma(2.0, 150.0, n), 2500.0), 0.0),
    })


def education(people: Residents, rows: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(rows)
    age = people.age[rows]
    z = people.vulnerability[rows]
    grade = np.clip(age - 6, 0, 12)
    level = np.select(
        [grade == 0, grade <= 6, grade <= 9],
        ["pre_primary", "primary", "lower_secondary"],
        default=np.where(rng.random(n) < 0.55, "upper_secondary", "vocational"),
    ).astype(object)
    support = np.array(["general", "intensified", "special"], dtype=object)[
        np.clip((rng.random(n) < 0.1 + 0.1 * (z > 1)).astype(int) + (rng.random(n) < 0.06), 0, 2)
    ]
    average = np.clip(np.round(8.2 - 0.4 * z + rng.normal(0, 0.7, n), 1), 4.0, 10.0)
    return pd.DataFrame({
        "person_id": people.person_id[rows],
        "school_level": level,
        "grade": grade,
        "absence_hours": np.minimum(rng.negative_binomial(2, 2 / (2 + 40 * np.exp(0.35 * z))), 400),
        "support_level": support,
        "grade_average": np.where(grade >= 4, average, np.nan),
    })


def employment(people: Residents, rows: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(rows)
    age = people.age[rows]
    z = people.vulnerability[rows]
    p_unemployed = 1.0 / (1.0 + np.exp(-(-2.4 + 0.6 * z)))
    u = rng.random(n)
    status = np.select(
        [age < 20, u < p_unemployed, u < p_unemployed + 0.08],
        ["student", "unemployed", "outside_labour_force"], default="employed",
    ).astype(object)
    months = np.where(status == "unemployed", rng.integers(1, 13, n), 0)
    earnings = np.where(status == "employed", np.minimum(rng.lognormal(10.6, 0.5, n), 400_000.0), 0.0)
    return pd.DataFrame({
        "person_id": people.person_id[rows],
        "employment_status": status,
        "months_unemployed": months,
        "annual_earnings": np.round(earnings, 0),
    })


def child_health(people: Residents, rows: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(rows)
    ref = pd.Timestamp(REFERENCE_DATE)
    return pd.DataFrame({
        "person_id": people.person_id[rows],
        "last_check_date": ref - pd.to_timedelta(rng.integers(0, 540, n), unit="D"),
        "vaccinations_complete": rng.random(n) < 0.95,
    })
