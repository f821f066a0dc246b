"""IBM diffprivlib's central DP logistic regression, as a peer, in a virtual environment of its own.

diffprivlib 0.6.6 imports only beside scikit-learn < 1.6 (DESIGN.md), and the project's own environment has a
newer scikit-learn, so it cannot be a dev dependency: this builds ``diffprivlib`` with ``scikit-learn==1.5.2``
in a venv of its own once (kept under ``$TILLIT_PEER_VENV``, default ``~/.cache/tillit/diffprivlib-venv``) and
runs it as a subprocess on arrays written to a file. It pools the data — a central-DP peer, not a federated one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

__all__ = ["diffprivlib_accuracy", "peer_venv"]

PACKAGES = ("diffprivlib==0.6.6", "scikit-learn==1.5.2")

_SCRIPT = """
import json, sys, warnings
import numpy as np
from diffprivlib.models import LogisticRegression
warnings.simplefilter("ignore")
data = np.load(sys.argv[1])
args = json.loads(sys.argv[2])
accuracies = []
for seed in range(args["seeds"]):
    model = LogisticRegression(epsilon=args["epsilon"], data_norm=args["data_norm"], random_state=seed, max_iter=1000)
    model.fit(data["x"], data["y"])
    accuracies.append(float((model.predict(data["x_test"]) == data["y_test"]).mean()))
print(json.dumps(accuracies))
"""


def peer_venv() -> Path:
    """The venv's python, built on first use (needs the package registry once)."""
    root = Path(os.environ.get("TILLIT_PEER_VENV", Path.home() / ".cache" / "tillit" / "diffprivlib-venv"))
    python = root / "bin" / "python"
    marker = root / "tillit-packages.txt"
    if python.exists() and marker.exists() and marker.read_text() == "\n".join(PACKAGES):
        return python
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(base), "-m", "venv", "--clear", str(root)], check=True, capture_output=True, timeout=300)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PACKAGES], check=True, capture_output=True,
                   timeout=900)
    marker.write_text("\n".join(PACKAGES))
    return python


def diffprivlib_accuracy(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, epsilon: float,
                         data_norm: float, workdir: Path, seeds: int = 5) -> list[float]:
    """Test accuracy of diffprivlib's ``LogisticRegression(epsilon, data_norm)`` fitted on the pooled rows ``x``
    (without an intercept column: it fits its own), one per seed."""
    data = workdir / "peer.npz"
    np.savez(data, x=x, y=y, x_test=x_test, y_test=y_test)
    done = subprocess.run([str(peer_venv()), "-c", _SCRIPT, str(data),
                           json.dumps({"epsilon": epsilon, "data_norm": data_norm, "seeds": seeds})],
                          check=True, capture_output=True, text=True, timeout=900)
    return [float(a) for a in json.loads(done.stdout)]
