"""What every part of the coordinator shares: settings, the database, the signing key, the contracts.

Built once by :func:`open_coordinator` (never at import time), passed to routes as a dependency.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from coordinator.db import Database
from coordinator.principals import bootstrap_admin
from coordinator.settings import CoordinatorSettings
from federation.signing import SigningKey, make_signing_key
from schemas import ContractCatalog

__all__ = ["Coordinator", "open_coordinator"]


@dataclass
class Coordinator:
    settings: CoordinatorSettings
    db: Database
    signer: SigningKey
    contracts: ContractCatalog

    @property
    def studies_dir(self) -> Path:
        return self.settings.state_dir / "studies"


def open_coordinator(settings: CoordinatorSettings) -> Coordinator:
    """Create the state directory, migrate the database, load (or make) the study-signing key and,
    on the very first start, an admin credential readable only by its owner."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.state_dir, 0o700)
    db = Database(settings.url)
    db.migrate()
    key_path = settings.signing_key_path
    signer = SigningKey.load(key_path) if key_path.exists() else make_signing_key(key_path)
    coordinator = Coordinator(settings=settings, db=db, signer=signer, contracts=ContractCatalog(list(settings.contracts_dirs)))
    bootstrap_admin(db, signer, settings.admin_token_path)
    return coordinator
