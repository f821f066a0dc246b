"""The synthetic municipality: contract-conforming sector silos generated from a known truth."""

from schemas.synth._identity_codes import make_identity_codes
from schemas.synth._run import SECTORS, SynthConfig, SynthResult, synthesize

__all__ = ["SECTORS", "SynthConfig", "SynthResult", "make_identity_codes", "synthesize"]
