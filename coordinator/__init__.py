"""The coordinator service: principals and roles, datasets, budgets and ledger, studies, audit, register, pages."""

from coordinator.app import create_app
from coordinator.settings import CoordinatorSettings, parse_settings
from coordinator.state import Coordinator, open_coordinator

__all__ = ["Coordinator", "CoordinatorSettings", "create_app", "open_coordinator", "parse_settings"]
