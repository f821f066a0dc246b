"""Federated computation: study specs, the privacy module, task kinds, Flower's ServerApp and ClientApp.

- ``spec``: what a study asks for, parsed once; ``templates``: planning templates that build specs
- ``privacy``: the only noise source and accountant; budget arithmetic
- ``tasks``: what a node computes (tables, model steps); ``results``/``projection``: server-side post-processing
- ``server_app``/``client_app``/``protocol``/``run_config``: the Flower apps and their messages
- ``launch``/``processes``/``pki``/``signing``/``flower_tuning``: Flower processes, TLS, node keys, spec signatures
"""

from federation.spec import StudySpec, load_spec, parse_spec

__all__ = ["StudySpec", "load_spec", "parse_spec"]
