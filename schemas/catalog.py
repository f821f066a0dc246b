"""Finding contracts: the built-in sector contracts plus any directory of a team's own files."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from common.errors import ContractError
from schemas.contract import Contract, parse_contract

__all__ = ["BUILTIN_DIR", "ContractCatalog", "load_contract_file"]

BUILTIN_DIR = Path(__file__).resolve().parent / "contracts"
_SUFFIXES = (".yaml", ".yml", ".json")


def load_contract_file(path: Path) -> Contract:
    """Read one contract file (YAML or JSON); a file unchanged since it was last read is not parsed again."""
    if not path.is_file():
        raise ContractError(f"contract file {path} does not exist")
    stat = path.stat()
    return _parse_file(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _parse_file(path: Path, mtime_ns: int, size: int) -> Contract:
    del mtime_ns, size   # part of the cache key only
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        kind = type(error).__name__
        raise ContractError(f"contract {path.name}: not readable as {path.suffix[1:].upper()} ({kind})") from None
    return parse_contract(document, path.name)


class ContractCatalog:
    """Contracts by name, from the built-in directory and any extra directories.

    A name defined twice is an error rather than a silent override: a node must never validate
    against a different contract than the one its operator thinks it uses.
    """

    def __init__(self, extra_dirs: Iterable[Path] = (), include_builtin: bool = True) -> None:
        dirs = ([BUILTIN_DIR] if include_builtin else []) + [Path(d) for d in extra_dirs]
        self._contracts: dict[str, Contract] = {}
        self._sources: dict[str, Path] = {}
        for directory in dirs:
            if not directory.is_dir():
                raise ContractError(f"contract directory {directory} does not exist")
            for path in sorted(directory.iterdir()):
                if path.suffix in _SUFFIXES:
                    self._add(load_contract_file(path), path)

    def _add(self, contract: Contract, source: Path) -> None:
        if contract.name in self._contracts:
            raise ContractError(
                f"contract {contract.name!r} is defined twice: {self._sources[contract.name]} and {source}"
            )
        self._contracts[contract.name] = contract
        self._sources[contract.name] = source

    def names(self) -> list[str]:
        return sorted(self._contracts)

    def get(self, name: str) -> Contract:
        try:
            return self._contracts[name]
        except KeyError:
            raise ContractError(f"unknown contract {name!r}; known: {', '.join(self.names())}") from None

    def source(self, name: str) -> Path:
        self.get(name)
        return self._sources[name]

    def all(self) -> Sequence[Contract]:
        return [self._contracts[n] for n in self.names()]
