"""docker-compose.yml stays in step with the CLI: every service runs a command `tillit` accepts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tillit.cli import _parser

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _interpolate(text: str) -> str:
    """What compose substitutes: ${VAR:-default} -> default; other variables -> a placeholder path."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?[^}]*\}", lambda m: m.group(2) or "/srv/placeholder", text)


def _services() -> dict[str, dict[str, object]]:
    return yaml.safe_load(COMPOSE.read_text())["services"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(n for n, s in _services().items() if "command" in s))
def test_every_service_command_parses_with_the_cli(name: str) -> None:
    # Prepare
    service = _services()[name]
    command = service["command"]
    assert isinstance(command, list)
    # Execute: argparse exits on an unknown command or option
    args = _parser().parse_args([_interpolate(str(part)) for part in command])
    # Assert
    assert args.command in ("synth", "node", "federation", "coordinator")


def test_nodes_run_supernodes_with_telemetry_off_tls_and_read_only_data() -> None:
    services = _services()
    nodes = {n: s for n, s in services.items() if n.startswith("node-")}
    assert len(nodes) == 7
    for name, service in nodes.items():
        assert service["command"][:2] == ["node", "start"], name  # type: ignore[index]
        assert service["environment"]["FLWR_TELEMETRY_ENABLED"] == "0", name  # type: ignore[index]
        assert service["secrets"] == ["federation_ca", "coordinator_signing_pub"], name
        assert service["depends_on"]["superlink"]["condition"] == "service_healthy", name  # type: ignore[index]
        assert "healthcheck" in service, name
        data_mounts = [v for v in service["volumes"] if str(v).startswith("${TILLIT_DATA")]  # type: ignore[union-attr]
        assert data_mounts and all(str(v).endswith(":ro") for v in data_mounts), name
    assert services["superlink"]["command"][:2] == ["federation", "superlink"]  # type: ignore[index]
    assert "healthcheck" in services["superlink"]
    secrets = yaml.safe_load(COMPOSE.read_text())["secrets"]
    assert all(":?" in s["file"] for s in secrets.values())


def test_the_coordinator_uses_postgres_and_reads_the_superlinks_results() -> None:
    services = _services()
    coordinator = services["coordinator"]
    command = [str(part) for part in coordinator["command"]]  # type: ignore[union-attr]
    assert command[:2] == ["coordinator", "serve"]
    assert command[command.index("--database-url") + 1].startswith("postgresql+psycopg://")
    assert command[command.index("--superlink") + 1] == "superlink:9092"
    for needed in ("postgres", "superlink"):
        assert coordinator["depends_on"][needed]["condition"] == "service_healthy"  # type: ignore[index]
    assert "healthcheck" in coordinator and "healthcheck" in services["postgres"]
    results = command[command.index("--results-dir") + 1]
    assert any(str(v).endswith(f":{results}") for v in services["superlink"]["volumes"])  # type: ignore[union-attr]
    assert coordinator["environment"]["FLWR_TELEMETRY_ENABLED"] == "0"  # type: ignore[index]


def test_docker_compose_parses_the_file_with_every_secret_and_volume_given(tmp_path: Path) -> None:
    # Prepare: Debian's docker-compose parses and interpolates without an engine; every required variable set
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("Debian's docker-compose is needed for this test; `make test` installs it (apt-get)")
    for name in ("ca.crt", "coordinator.pub", "db-password", "pgpass"):
        (tmp_path / name).write_text("placeholder\n")
    env = {**os.environ, "TILLIT_DATA": str(tmp_path), "TILLIT_CONFIG": str(tmp_path), "TILLIT_PKI": str(tmp_path),
           "TILLIT_COORDINATOR_KEY": str(tmp_path / "coordinator.pub"),
           "TILLIT_DB_PASSWORD_FILE": str(tmp_path / "db-password"), "TILLIT_DB_PGPASS_FILE": str(tmp_path / "pgpass")}
    # Execute
    done = subprocess.run([binary, "-f", str(COMPOSE), "config"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    # Assert: valid, and the resolved file keeps what the deployment relies on
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert {"coordinator", "postgres", "superlink"} <= set(resolved["services"])
    assert all(s.get("healthcheck") for n, s in resolved["services"].items() if n != "synth")
    missing = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], env={"PATH": os.environ["PATH"]},
                             capture_output=True, text=True, timeout=120, check=False)
    assert missing.returncode != 0 and "TILLIT_" in missing.stderr     # refuses to start without its secrets


def test_the_image_copies_every_package_the_project_installs() -> None:
    # Prepare: the packages pyproject installs
    import tomllib

    root = Path(__file__).resolve().parents[2]
    include = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    # Execute
    copied = {line.split()[1] for line in (root / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")}
    # Assert
    assert packages <= copied, sorted(packages - copied)
