"""The coordinator's settings, parsed once at the edge (CLI options and ``TILLIT_COORDINATOR_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tillit.errors import UsageError, describe_validation_error

__all__ = ["CoordinatorSettings", "parse_settings"]


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
        return self.state_dir / "keys" / "study-signing.key"

    @property
    def admin_token_path(self) -> Path:
        return self.state_dir / "admin.token"

    @property
    def run_results_dir(self) -> Path:
        return self.results_dir or self.state_dir / "results"


def parse_settings(**options: object) -> CoordinatorSettings:
    """Settings from options; ``None`` values fall back to the defaults."""
    try:
        settings = CoordinatorSettings.model_validate({k: v for k, v in options.items() if v is not None})
    except ValidationError as error:
        raise UsageError(f"coordinator settings: {describe_validation_error(error)}") from None
    if settings.superlink and not settings.superlink_insecure and settings.root_certificates is None:
        raise UsageError("coordinator settings: root_certificates is required to reach the SuperLink over TLS "
                         "(or superlink_insecure for a throw-away trial)")
    return settings
