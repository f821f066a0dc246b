"""Sector data contracts and the synthetic municipality generator."""

from schemas.contract import Column, Contract, parse_contract
from schemas.registry import BUILTIN_DIR, ContractRegistry, load_contract_file

__all__ = [
    "BUILTIN_DIR",
    "Column",
    "Contract",
    "ContractRegistry",
    "load_contract_file",
    "parse_contract",
]
