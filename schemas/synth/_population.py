"""The resident universe of one synthetic municipality: ages, districts, identity codes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from schemas.synth._identity_codes import Country, make_identity_codes

REFERENCE_DATE = dt.date(2024, 12, 31)

# Major districts and their population shares (rounded from the municipalities' own statistics).
DISTRICTS: dict[str, dict[str, float]] = {
    "espoo": {"Suur-Leppävaara": 0.25, "Suur-Tapiola": 0.17, "Suur-Matinkylä": 0.14,
              "Suur-Espoonlahti": 0.19, "Suur-Kauklahti": 0.05, "Vanha-Espoo": 0.17,
              "Pohjois-Espoo": 0.03},
    "vantaa": {"Myyrmäki": 0.20, "Kivistö": 0.07, "Aviapolis": 0.10, "Tikkurila": 0.19,
               "Koivukylä": 0.15, "Korso": 0.13, "Hakunila": 0.16},
    "helsinki": {"Eteläinen": 0.17, "Läntinen": 0.17, "Keskinen": 0.15, "Pohjoinen": 0.06,
                 "Koillinen": 0.14, "Kaakkoinen": 0.09, "Itäinen": 0.21, "Östersundom": 0.01},
}


def age_weights() -> np.ndarray:
    """Relative number of residents at each age 0..99 — a young, growing Nordic city.

    Gives about 21 % aged 0-17 and 17 % aged 65+, close to Espoo.
    """
    weights = np.empty(100)
    weights[0:7] = 1.10
    weights[7:18] = 1.15
    weights[18:30] = 1.15
    weights[30:45] = 1.45
    weights[45:65] = 1.25
    weights[65:75] = 1.00
    weights[75:85] = 0.60
    weights[85:100] = 0.25 * np.exp(-0.25 * np.arange(15))
    shares: np.ndarray = weights / weights.sum()
    return shares


@dataclass
class Residents:
    """Columnar resident facts; index i is the same resident in every array."""

    municipality: str
    person_id: np.ndarray
    birth_date: pd.Series
    age: np.ndarray
    male: np.ndarray
    district: np.ndarray
    mother_tongue: np.ndarray
    household_size: np.ndarray
    registered_since: pd.Series
    #: latent family vulnerability; drives correlated risk factors and service use
    vulnerability: np.ndarray

    def __len__(self) -> int:
        return len(self.person_id)


def make_residents(municipality: str, n: int, rng: np.random.Generator,
                   taken_codes: frozenset[str] | set[str] = frozenset(), country: Country = "fi") -> Residents:
    age = rng.choice(100, size=n, p=age_weights())
    # birth date uniformly within the year that gives this age on the reference date
    days_into_year = rng.integers(0, 365, size=n)
    ref = pd.Timestamp(REFERENCE_DATE)
    birth = ref - pd.to_timedelta(age * 365 + days_into_year + age // 4, unit="D")
    birth_date = pd.Series(pd.DatetimeIndex(birth).normalize())
    male = rng.random(n) < 0.49
    districts = DISTRICTS.get(municipality) or {f"{municipality}_district_{k}": 1 / 6 for k in range(1, 7)}
    names = np.array(list(districts), dtype=object)
    shares = np.array(list(districts.values()))
    district = names[rng.choice(len(names), size=n, p=shares / shares.sum())]
    tongue = np.array(["fi", "sv", "other"], dtype=object)[rng.choice(3, size=n, p=[0.76, 0.06, 0.18])]
    children = age < 18
    household = np.where(children, 3 + rng.poisson(1.0, n), 1 + rng.poisson(0.9, n))
    household = np.clip(household, 1, 12)
    # moved in at a random point of life (about a third born in the municipality)
    born_here = rng.random(n) < 0.35
    lived_days = (ref - birth_date).dt.days.to_numpy()
    moved = birth_date + pd.to_timedelta((rng.random(n) * lived_days).astype(np.int64), unit="D")
    registered = moved.where(~born_here, birth_date)
    return Residents(
        municipality=municipality,
        person_id=make_identity_codes(birth_date, male, rng, exclude=taken_codes, country=country),
        birth_date=birth_date,
        age=age,
        male=male,
        district=district,
        mother_tongue=tongue,
        household_size=household,
        registered_since=registered,
        vulnerability=rng.standard_normal(n),
    )


def population_register(people: Residents) -> pd.DataFrame:
    return pd.DataFrame({
        "person_id": people.person_id,
        "municipality": people.municipality,
        "district": people.district,
        "birth_date": people.birth_date,
        "sex": np.where(people.male, "male", "female"),
        "mother_tongue": people.mother_tongue,
        "household_size": people.household_size,
        "registered_since": people.registered_since,
    })
