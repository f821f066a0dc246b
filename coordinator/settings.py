"""The coordinator's settings, parsed once at the edge: CLI options, else ``TILLIT_COORDINATOR_<FIELD>``.

Every field can come from the environment (``TILLIT_COORDINATOR_DATABASE_URL``,
``TILLIT_COORDINATOR_SUPERLINK``, ``TILLIT_COORDINATOR_ROOT_CERTIFICATES``, ``TILLIT_COORDINATOR_SIGNING_KEY``,
...; directories of contracts as a path list in ``TILLIT_COORDINATOR_CONTRACTS_DIRS``); an option on the command
line wins.
The caller passes the environment in: nothing below this function reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common.errors import UsageError, describe_validation_error

__all__ = ["ENV_PREFIX", "CoordinatorSettings", "default_signing_key", "parse_settings"]


def default_signing_key(state_dir: Path) -> Path:
    """Where the study-signing key lives unless ``signing_key`` says otherwise (its public half beside it, ``.pub``)."""
    return state_dir / "keys" / "study-signing.key"


class CoordinatorSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    state_dir: Path
    #: SQLAlchemy URL; SQLite in the state directory unless given (``postgresql+psycopg://...``)
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=0, le=65535)
    #: the SuperLink's Control API (HOST:PORT); without it studies can be approved but not run
    superlink: str | None = None
    #: the federation CA, to reach the SuperLink over TLS; required unless ``superlink_insecure``
    root_certificates: Path | None = None
    superlink_insecure: bool = False
    #: where the ServerApp writes ``<run_id>/result.json`` (shared with the SuperLink's host)
    results_dir: Path | None = None
    #: directories of contracts teams wrote themselves, besides the built-in ones
    contracts_dirs: tuple[Path, ...] = ()
    #: seconds between looks at running studies' results
    watch_seconds: float = Field(default=0.5, gt=0, le=60)
    #: the study-signing key (Ed25519, PEM); made on first start if missing. Keep it outside the state directory
    #: (and its public half with whoever verifies the audit log) so that write access to the database and the
    #: state directory is not enough to re-sign a rewritten audit chain
    signing_key: Path | None = None
    #: how long a node may take to answer any one message of a run before it counts as lost
    round_seconds: float = Field(default=300.0, gt=0, le=86400)
    #: a study still without a result this long after its launch is marked failed (its charges stay)
    run_deadline_seconds: float = Field(default=6 * 3600.0, gt=0, le=30 * 86400)
    #: a running study whose SuperLink has refused connections this long is marked failed: the SuperLink holds
    #: the run and its ServerApp, so a run outlives neither (its charges stay)
    superlink_grace_seconds: float = Field(default=30.0, gt=0, le=86400)
    #: a web sign-in session unused this long ends (the browser is sent to the sign-in page)
    web_idle_minutes: float = Field(default=30.0, gt=0, le=24 * 60)

    @field_validator("superlink")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError("superlink must be HOST:PORT")
        return value

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'coordinator.sqlite').resolve()}"

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key or default_signing_key(self.state_dir)

    @property
    def admin_token_path(self) -> Path:
        return self.state_dir / "admin.token"

    @property
    def run_results_dir(self) -> Path:
        return self.results_dir or self.state_dir / "results"


ENV_PREFIX = "TILLIT_COORDINATOR_"


def parse_settings(environ: Mapping[str, str] | None = None, **options: object) -> CoordinatorSettings:
    """Settings from options; a ``None`` or missing option falls back to ``environ``, then the default."""
    values = {k: v for k, v in options.items() if v is not None and v != ()}
    for name in CoordinatorSettings.model_fields:
        text = (environ or {}).get(ENV_PREFIX + name.upper())
        if name not in values and text:
            values[name] = tuple(p for p in text.split(os.pathsep) if p) if name == "contracts_dirs" else text
    try:
        settings = CoordinatorSettings.model_validate(values)
    except ValidationError as error:
        raise UsageError(f"coordinator settings: {describe_validation_error(error)}") from None
    if settings.superlink and not settings.superlink_insecure and settings.root_certificates is None:
        raise UsageError("coordinator settings: root_certificates is required to reach the SuperLink over TLS "
                         "(or superlink_insecure for a throw-away trial)")
    return settings
