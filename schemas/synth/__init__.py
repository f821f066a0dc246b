"""The synthetic municipality: contract-conforming sector silos generated from a known truth."""

from schemas.synth._identity_codes import COUNTRIES, Country, make_identity_codes
from schemas.synth._run import SECTORS, SynthConfig, SynthResult, country_contracts, synthesize

__all__ = ["COUNTRIES", "SECTORS", "Country", "SynthConfig", "SynthResult", "country_contracts", "make_identity_codes",
           "synthesize"]
