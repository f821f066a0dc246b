"""The synthetic municipality: contract-conforming sector silos generated from a known truth."""

from schemas.synth._run import SECTORS, SynthConfig, SynthResult, synthesize

__all__ = ["SECTORS", "SynthConfig", "SynthResult", "synthesize"]
