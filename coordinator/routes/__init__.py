"""One router per resource; each route names its policy in :mod:`coordinator.authz`."""

__all__ = ["admin", "audit", "budgets", "nodes", "public", "studies"]
