"""`tillit demo` (what `make demo` runs) end to end on small municipalities: real coordinator, SuperLink
and SuperNodes, budgets, approvals, runs, reports; the report renders offline in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from schemas.synth import SECTORS
from tillit.cli import main

pytestmark = pytest.mark.integration

RESIDENTS = 6_000
MUNICIPALITIES = ("espoo", "vantaa")
HORIZONTAL = ("health-transitions-2024", "care-needs-model-2024")
CROSS_SECTOR = tuple(f"child-welfare-risk-factors-{m}-2024" for m in MUNICIPALITIES)
STUDIES = (*HORIZONTAL, *CROSS_SECTOR)
RISK_SECTORS = ("population_register", "child_welfare", "child_health", "social_services", "education", "employment")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    root = tmp_path_factory.mktemp("demo")
    capture = root / "stdout.txt"
    # the CLI in-process, stdout captured to a file so module scope needs no capsys
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo", "--out", str(root / "demo-out"), "--residents", str(RESIDENTS),
                     "--municipalities", ",".join(MUNICIPALITIES)])
    capture.write_text(buffer.getvalue())
    return root / "demo-out", buffer.getvalue(), code


def test_demo_runs_every_phase_and_exits_0(demo: tuple[Path, str, int]) -> None:
    root, out, code = demo
    assert code == 0
    assert json.loads((root / "truth.json").read_text())["municipalities"] == list(MUNICIPALITIES)
    summary = json.loads((root / "summary.json").read_text())
    # one SuperNode per silo, each validating its own extract into its own state directory
    assert set(summary["nodes"]) == {f"{m}/{sector}" for m in MUNICIPALITIES for sector in SECTORS}
    for dataset, node in summary["nodes"].items():
        report = json.loads(Path(node["report"]).read_text())
        assert Path(node["report"]).is_relative_to(root / "runtime" / "federation" / "nodes" / dataset.replace("/", "-"))
        assert report["verdict"] == node["verdict"] and report["verdict"] in ("pass", "warn")
        assert f"{dataset:<32} {report['verdict'].upper()}" in out
    assert f"starting a coordinator, a SuperLink and {len(MUNICIPALITIES) * len(SECTORS)} SuperNodes" in out
    assert set(summary["seconds"]) == {"synth", "validate", "startup", "setup", *STUDIES}
    for study in HORIZONTAL:
        result = json.loads((root / "studies" / study / "result.json").read_text())
        assert result["status"] == "completed" and result["datasets"] == [f"{m}/health_care" for m in MUNICIPALITIES]
        assert f"report: {root / 'studies' / study / 'report.html'}" in out
    for municipality, study in zip(MUNICIPALITIES, CROSS_SECTOR):
        result = json.loads((root / "studies" / study / "result.json").read_text())
        assert result["status"] == "completed"
        assert sorted(result["datasets"]) == sorted(f"{municipality}/{s}" for s in RISK_SECTORS)
        assert len(result["outputs"]["factors"]) == 280 and len(result["outputs"]["pairs"]) == 105
        assert (root / "studies" / study / "factors.csv").exists() and (root / "studies" / study / "pairs.csv").exists()


def test_transitions_come_close_to_the_truth_and_budgets_are_charged(demo: tuple[Path, str, int]) -> None:
    root, out, _ = demo
    summary = json.loads((root / "summary.json").read_text())
    # 0.01 at 300,000 residents; at 12,000 the noise weighs 25 times more per row (measured 0.030-0.036)
    transitions = summary["studies"]["health-transitions-2024"]
    assert transitions["transition_mae"] < 0.05
    assert transitions["transition_mae"] < 0.8 * transitions["transition_mae_row_by_row"]
    assert "transition probabilities vs truth: MAE" in out
    charged = [(e["dataset"], e["study_id"]) for e in summary["ledger"]["entries"]]
    assert sorted(charged) == sorted([(f"{m}/health_care", s) for m in MUNICIPALITIES for s in HORIZONTAL]
                                     + [(f"{m}/{sector}", s) for m, s in zip(MUNICIPALITIES, CROSS_SECTOR)
                                        for sector in RISK_SECTORS])
    register = json.loads((root / "register.json").read_text())
    assert {s["id"] for s in register["studies"]} == set(STUDIES)
    assert all(s["status"] == "released" for s in register["studies"])


def test_every_process_the_demo_started_has_stopped(demo: tuple[Path, str, int]) -> None:
    root, _, _ = demo
    running = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if str(root) in cmdline and state != "Z":
                running.append(cmdline[:120])
    assert running == []


def _png_pixels(data: bytes) -> np.ndarray:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into an array, without an imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, b"", b""
    while position < len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind, body = data[position + 4:position + 8], data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks += body
        position += 12 + length
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    assert header[8] == 8 and header[9] in (2, 6)
    channels = 3 if header[9] == 2 else 4
    raw = np.frombuffer(zlib.decompress(chunks), dtype=np.uint8).reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), dtype=np.int32)
    for row in range(height):
        kind, line = raw[row, 0], raw[row, 1:].astype(np.int32)
        previous = out[row - 1] if row else np.zeros(width * channels, dtype=np.int32)
        if kind in (0, 2):
            out[row] = (line + (previous if kind == 2 else 0)) % 256
            continue
        current = np.zeros(width * channels, dtype=np.int32)
        for i in range(width * channels):
            left = current[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                predictor = left
            elif kind == 3:
                predictor = (left + up) // 2
            else:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
            current[i] = (line[i] + predictor) % 256
        out[row] = current
    return out.reshape(height, width, channels)


def test_the_report_renders_offline_in_headless_chromium(demo: tuple[Path, str, int], tmp_path: Path) -> None:
    # Prepare
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.fail("headless Chromium is needed for this test; .ci/run installs it (apt-get install chromium)")
    root, _, _ = demo
    report = root / "studies" / "health-transitions-2024" / "report.html"
    page = report.read_text()
    shot = tmp_path / "report.png"
    # Execute: no network at all for the browser
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--proxy-server=127.0.0.1:9",
                    "--proxy-bypass-list=<-loopback>", f"--screenshot={shot}", "--window-size=1300,2000",
                    f"file://{report}"], check=True, capture_output=True, timeout=120)
    # Assert: the screenshot shows the heatmaps (blue cells) and the bands (tinted fills), nothing is fetched
    pixels = _png_pixels(shot.read_bytes())
    red, green, blue = (pixels[..., i].astype(int) for i in range(3))
    heat = (blue == 255) & (red == green) & (red < 230)
    assert heat.mean() > 0.005, f"only {heat.mean():.4f} of the screenshot shows heatmap cells"
    assert page.count('class="plot heatmap"') == 4 and 'class="plot projection"' in page
    assert 'class="band"' in page and 'class="plot budget"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert "<script" not in page
