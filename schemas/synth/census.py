"""A census-like tabular dataset for judging the DP logistic regression against its peers (tests, benchmarks).

No real tabular dataset of tens of thousands of people ships offline inside a package this environment has
(scikit-learn's bundled ones have at most 1,797 rows; its ``fetch_*`` functions download). So this makes one
shaped like the UCI Adult census extract, the usual benchmark for private logistic regression: about 49,000
people, six numeric and eight categorical columns with Adult's marginal shares (education levels, marital
status, 14 occupations, rare countries), a redundant pair (``education`` and ``education_num``, as in Adult), a
heavy-tailed capital gain whose honest range is 0–99,999 (0 for 92 %, a spike at 99,999) and a binary outcome
(income over 50K, ~24 %) drawn from a model a logistic regression cannot fit exactly (age peaks in mid-life,
capital gain acts as a threshold, interactions with sex and marriage). Pooled non-private logistic regression
reaches ~0.85 accuracy on it, as on Adult.

It is written to silos as a team would: one Parquet file per municipality with a Finnish identity code per
person (the contract's resident key), and the contract as a YAML file of the team's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.synth import make_identity_codes

__all__ = ["CONTRACT", "FEATURES", "OUTCOME", "Census", "make_census", "write_silos"]

OUTCOME = "high_income"
#: the columns an analyst would use as features: every one but the identifier and the outcome
FEATURES = ("age", "workclass", "education", "education_num", "marital_status", "occupation", "relationship",
            "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country")

_EDUCATION = {  # level: (years, share)
    "Preschool": (1, .002), "1st-4th": (2, .005), "5th-6th": (3, .010), "7th-8th": (4, .020), "9th": (5, .016),
    "10th": (6, .029), "11th": (7, .037), "12th": (8, .013), "HS-grad": (9, .322), "Some-college": (10, .223),
    "Assoc-voc": (11, .042), "Assoc-acdm": (12, .033), "Bachelors": (13, .164), "Masters": (14, .054),
    "Prof-school": (15, .018), "Doctorate": (16, .012)}
_WORKCLASS = {"Private": .70, "Self-emp-not-inc": .079, "Local-gov": .064, "State-gov": .041, "Self-emp-inc": .035,
              "Federal-gov": .030, "Without-pay": .0005, "Never-worked": .0003, "Unknown": .0542}
_OCCUPATION = {"Prof-specialty": .127, "Craft-repair": .125, "Exec-managerial": .125, "Adm-clerical": .115,
               "Sales": .113, "Other-service": .101, "Machine-op-inspct": .062, "Transport-moving": .048,
               "Handlers-cleaners": .042, "Farming-fishing": .030, "Tech-support": .030, "Protective-serv": .020,
               "Priv-house-serv": .005, "Armed-Forces": .0005, "Unknown": .0565}
_RACE = {"White": .855, "Black": .096, "Asian-Pac-Islander": .031, "Amer-Indian-Eskimo": .010, "Other": .008}
_COUNTRY = {"United-States": .897, "Mexico": .020, "Philippines": .006, "Germany": .004, "Puerto-Rico": .004,
            "Canada": .004, "El-Salvador": .003, "India": .003, "Cuba": .003, "England": .003, "China": .002,
            "Jamaica": .002, "South": .002, "Italy": .002, "Dominican-Republic": .002, "Vietnam": .002,
            "Guatemala": .002, "Japan": .002, "Poland": .002, "Columbia": .002, "Other": .033}
_MARITAL = ("Married-civ-spouse", "Never-married", "Divorced", "Separated", "Widowed", "Married-spouse-absent",
            "Married-AF-spouse")
_RELATIONSHIP = ("Husband", "Wife", "Own-child", "Not-in-family", "Unmarried", "Other-relative")

CONTRACT = f"""
format: 1
name: census_income
version: 1.0.0
sector: employment
title: Census income extract (written by the team, not built in)
description: One row per working-age resident, as in the public census income extract.
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
    range: [17, 90]
  - name: workclass
    type: category
    privacy: sensitive
    categories: [{", ".join(_WORKCLASS)}]
  - name: education
    type: category
    privacy: sensitive
    categories: [{", ".join(_EDUCATION)}]
  - name: education_num
    type: integer
    privacy: sensitive
    range: [1, 16]
  - name: marital_status
    type: category
    privacy: sensitive
    categories: [{", ".join(_MARITAL)}]
  - name: occupation
    type: category
    privacy: sensitive
    categories: [{", ".join(_OCCUPATION)}]
  - name: relationship
    type: category
    privacy: sensitive
    categories: [{", ".join(_RELATIONSHIP)}]
  - name: race
    type: category
    privacy: sensitive
    categories: [{", ".join(_RACE)}]
  - name: sex
    type: category
    privacy: quasi_identifier
    categories: [Female, Male]
  - name: capital_gain
    type: integer
    privacy: sensitive
    range: [0, 99999]
  - name: capital_loss
    type: integer
    privacy: sensitive
    range: [0, 4356]
  - name: hours_per_week
    type: integer
    privacy: sensitive
    range: [1, 99]
  - name: native_country
    type: category
    privacy: quasi_identifier
    categories: [{", ".join(_COUNTRY)}]
  - name: high_income
    type: boolean
    privacy: sensitive
"""


@dataclass(frozen=True)
class Census:
    train: pd.DataFrame
    test: pd.DataFrame


def _choice(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    p = np.array(list(shares.values()))
    return rng.choice(np.array(list(shares), dtype=object), size=n, p=p / p.sum())


def make_census(people: int = 48_842, seed: int = 0, test_share: float = 1 / 3) -> Census:
    """``people`` rows split into train and test at random (test data, drawn with numpy: not privacy noise)."""
    rng = np.random.default_rng(seed)
    n = people
    age = np.clip(np.round(17 + rng.gamma(2.3, 9.3, n)), 17, 90).astype(np.int64)
    male = rng.random(n) < 0.67
    education = _choice(rng, {k: v[1] for k, v in _EDUCATION.items()}, n)
    education_num = np.array([_EDUCATION[e][0] for e in education])
    # marital status depends on age: the young are mostly never married
    young = np.clip((35 - age) / 18, 0, 1)
    married = rng.random(n) < (0.62 - 0.55 * young) * np.where(age > 70, 0.7, 1.0)
    rest = rng.choice(np.array(_MARITAL[1:], dtype=object), size=n, p=[.60, .25, .06, .06, .024, .006])
    rest = np.where((rest == "Never-married") | (rng.random(n) < young), "Never-married", rest)
    rest = np.where((age > 65) & (rng.random(n) < 0.4), "Widowed", rest)
    marital = np.where(married, "Married-civ-spouse", rest).astype(object)
    relationship = np.where(married, np.where(male, "Husband", "Wife"),
                            np.where(age < 25, np.where(rng.random(n) < 0.7, "Own-child", "Not-in-family"),
                                     _choice(rng, {"Not-in-family": .55, "Unmarried": .33, "Own-child": .06,
                                                   "Other-relative": .06}, n))).astype(object)
    race = _choice(rng, _RACE, n)
    country = _choice(rng, _COUNTRY, n)
    workclass = _choice(rng, _WORKCLASS, n)
    # occupation leans on education and sex
    occupation = _choice(rng, _OCCUPATION, n)
    educated = education_num >= 13
    swap = educated & (rng.random(n) < 0.45)
    occupation[swap] = rng.choice(np.array(["Prof-specialty", "Exec-managerial"], dtype=object), swap.sum())
    occupation[workclass == "Unknown"] = "Unknown"
    hours = np.where(rng.random(n) < 0.47, 40, np.clip(np.round(rng.normal(41 + 4 * male, 12.5, n)), 1, 99))
    hours = np.where(age < 22, np.clip(hours - 12, 1, 99), hours).astype(np.int64)
    # the outcome: a model with mid-life peak, thresholds and interactions (not a plain logistic regression)
    occupation_effect = {"Exec-managerial": 0.8, "Prof-specialty": 0.6, "Tech-support": 0.4, "Sales": 0.3,
                         "Protective-serv": 0.4, "Craft-repair": 0.0, "Adm-clerical": -0.2, "Transport-moving": -0.2,
                         "Machine-op-inspct": -0.4, "Farming-fishing": -0.9, "Handlers-cleaners": -0.9,
                         "Other-service": -1.3, "Priv-house-serv": -2.0, "Armed-Forces": 0.0, "Unknown": -0.8}
    work_effect = {"Self-emp-inc": 0.6, "Federal-gov": 0.5, "Local-gov": 0.0, "State-gov": -0.1, "Private": 0.0,
                   "Self-emp-not-inc": -0.3, "Without-pay": -2.0, "Never-worked": -2.0, "Unknown": -0.3}
    marriage = (marital == "Married-civ-spouse")
    logit = (-4.9 + 0.36 * (education_num - 9) + 2.2 * marriage - 0.4 * marriage * (~male)
             + 0.065 * (np.minimum(age, 52) - 17) - 0.05 * np.maximum(age - 58, 0)
             + 0.032 * (hours - 40) - 0.0006 * np.maximum(hours - 55, 0) ** 2
             + 0.35 * male + np.vectorize(occupation_effect.get)(occupation)
             + np.vectorize(work_effect.get)(workclass) - 0.3 * (race == "Black")
             + 0.25 * (country == "United-States") + rng.normal(0, 0.2, n))
    latent = 1 / (1 + np.exp(-logit))
    high = rng.random(n) < latent
    # capital gain and loss follow income: most have none; a spike at 99,999 among the rich
    gain = np.where(rng.random(n) < np.where(high, 0.21, 0.045),
                    np.round(np.exp(rng.normal(np.where(high, 9.2, 8.1), 0.7, n))), 0)
    gain = np.where(high & (rng.random(n) < 0.02), 99_999, np.clip(gain, 0, 99_999)).astype(np.int64)
    loss = np.where(rng.random(n) < np.where(high, 0.09, 0.035),
                    np.round(rng.normal(np.where(high, 1_950, 1_700), 300, n)), 0)
    loss = np.clip(loss, 0, 4_356).astype(np.int64)
    # a small share of outcomes that no feature explains
    high = np.where(rng.random(n) < 0.005, ~high, high)
    births = pd.Series(pd.to_datetime("2024-12-31") - pd.to_timedelta((age * 365.25 + rng.integers(0, 365, n))
                                                                        .astype(int), unit="D"))
    frame = pd.DataFrame({
        "person_id": make_identity_codes(births, male, rng), "age": age, "workclass": workclass,
        "education": education, "education_num": education_num, "marital_status": marital,
        "occupation": occupation, "relationship": relationship, "race": race,
        "sex": np.where(male, "Male", "Female"), "capital_gain": gain, "capital_loss": loss,
        "hours_per_week": hours, "native_country": country, OUTCOME: high})
    test = rng.random(n) < test_share
    return Census(train=frame[~test].reset_index(drop=True), test=frame[test].reset_index(drop=True))


def write_silos(frame: pd.DataFrame, root: Path, municipalities: tuple[str, ...],
                shares: tuple[float, ...] | None = None, seed: int = 0) -> dict[str, Path]:
    """Split ``frame`` over municipalities at random (unequal sizes by default), one Parquet silo each."""
    rng = np.random.default_rng(seed)
    k = len(municipalities)
    weights = np.array(shares if shares is not None else [1.0 + 0.5 * (k - 1 - i) for i in range(k)])
    which = rng.choice(k, size=len(frame), p=weights / weights.sum())
    paths = {}
    for i, municipality in enumerate(municipalities):
        (root / municipality).mkdir(parents=True, exist_ok=True)
        path = root / municipality / "census_income.parquet"
        frame[which == i].reset_index(drop=True).to_parquet(path, index=False)
        paths[municipality] = path
    return paths
