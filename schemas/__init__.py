"""Sector data contracts and the synthetic municipality generator."""

from schemas.catalog import BUILTIN_DIR, ContractCatalog, contract_yaml, load_contract_file
from schemas.contract import Column, Contract, parse_contract

__all__ = [
    "BUILTIN_DIR",
    "Column",
    "Contract",
    "ContractCatalog",
    "contract_yaml",
    "load_contract_file",
    "parse_contract",
]
