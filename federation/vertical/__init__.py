"""Cross-sector (vertical) studies: the same residents, different facts in different silos, never pooled.

- ``protocol``: the steps and what travels in each; ``run``: driving them over any relay
- ``analysis``: 2×2 and 2×2×2 tables, measures with intervals, rankings, pair screening (post-processing)
- ``results``: a study's outputs from its noisy releases
The node's side is :mod:`nodes.cross_sector`; keys, envelopes, pseudonyms and BFV are :mod:`federation.crypto`.
"""

from federation.vertical.protocol import STEPS, Step, StepReply
from federation.vertical.run import Released, Relay, run_cross_sector

__all__ = ["STEPS", "Relay", "Released", "Step", "StepReply", "run_cross_sector"]
