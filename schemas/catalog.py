"""Finding contracts: the built-in sector contracts plus any directory of a team's own files."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from common.errors import ContractError
from schemas.contract import Contract, parse_contract

__all__ = ["BUILTIN_DIR", "ContractCatalog", "contract_yaml", "load_contract_file"]

BUILTIN_DIR = Path(__file__).resolve().parent / "contracts"
_SUFFIXES = (".yaml", ".yml", ".json")


def load_contract_file(path: Path) -> Contract:
    """Read one contract file (YAML or JSON); a file unchanged since it was last read is not parsed again."""
    if not path.is_file():
        raise ContractError(f"contract file {path} does not exist")
    stat = path.stat()
    return _parse_file(path.resolve(), stat.st_mtime_ns, stat.st_size)


def contract_yaml(contract: Contract, comment: str = "") -> str:
    """The contract as a YAML file that :func:`load_contract_file` reads back to an equal contract."""
    document = {"format": contract.format, **contract.model_dump(mode="python", exclude_defaults=True)}
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + yaml.safe_dump(_plain(document), sort_keys=False, allow_unicode=True, width=110)


def _plain(value: object) -> object:
    """Tuples as lists, recursively: YAML's safe dumper writes no Python tuples (dates it writes as dates)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


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
    against a different contract than the one its operator thinks it uses. The one exception is said
    in the file itself: a team's contract with ``replaces_builtin: true`` stands in for the built-in one
    of its name (the built-in sectors with Swedish identity codes, say); two team files still may not
    share a name, and a file that claims to replace a built-in contract that does not exist is refused.
    """

    def __init__(self, extra_dirs: Iterable[Path] = (), include_builtin: bool = True) -> None:
        # a directory named twice (an option and the environment, say) is read once
        dirs = list(dict.fromkeys(([BUILTIN_DIR] if include_builtin else []) + [Path(d).absolute() for d in extra_dirs]))
        self._contracts: dict[str, Contract] = {}
        self._sources: dict[str, Path] = {}
        self._builtin: set[str] = set()       # names the built-in directory defines
        self._replaced: set[str] = set()      # built-in names a team's file stands in for
        for position, directory in enumerate(dirs):
            if not directory.is_dir():
                raise ContractError(f"contract directory {directory} does not exist")
            builtin = include_builtin and position == 0
            for path in sorted(directory.iterdir()):
                if path.suffix in _SUFFIXES:
                    self._add(load_contract_file(path), path, builtin, include_builtin)

    def _add(self, contract: Contract, source: Path, builtin: bool, checks_replacing: bool) -> None:
        name = contract.name
        replaces = contract.replaces_builtin and not builtin
        if replaces and checks_replacing and name not in self._builtin:
            raise ContractError(f"contract {source.name} says replaces_builtin, but there is no built-in "
                                f"contract {name!r} (built-in: {', '.join(sorted(self._builtin))})")
        if name in self._contracts and not (replaces and name not in self._replaced):
            hint = (" (a team's file stands in for a built-in contract only with replaces_builtin: true)"
                    if name in self._builtin and name not in self._replaced else "")
            raise ContractError(f"contract {name!r} is defined twice: {self._sources[name]} and {source}{hint}")
        if builtin:
            self._builtin.add(name)
        elif replaces:
            self._replaced.add(name)
        self._contracts[name] = contract
        self._sources[name] = source

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
