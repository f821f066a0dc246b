"""How often the DP-trained care-needs model reads as calibrated within its private-evaluation intervals.

The demo's care-needs model (the ``logistic_regression`` template at its defaults: Newton, ε = 1) is trained
``--trainings`` times on one synthetic 300,000-resident municipality, in one process with the functions the node
and the ServerApp use (each training with its own OpenDP noise); each trained model's evaluation release is drawn
``--draws`` times. Per training: the share of draws in which every calibration bin's predicted rate lies within
its interval, with the training noise in the intervals (as the ServerApp reports it) and without. Run once with
the health segment as categories (the demo's model, the right shape) and once as one scaled number (a wrong
shape, which the check should flag).

Run:  ``.venv/bin/python -m benchmarks.calibration_coverage [--trainings 12] [--draws 40]``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from federation.privacy import gaussian_release, plan_study
from federation.results import private_evaluation
from federation.tasks import encode, evaluation_statistics, newton_fit_in_process
from federation.templates import build_spec
from nodes.agent import RESIDENT, typed_extract
from nodes.secret import ephemeral_secret
from schemas import ContractCatalog
from schemas.synth import SynthConfig, synthesize

FEATURES = ["health_segment", "hospital_days", "specialist_visits", "primary_care_visits"]


def _coverage(town: Path, categorical: bool, trainings: int, draws: int) -> tuple[list[float], list[float]]:
    registry = ContractCatalog()
    params = {"contract": "health_care", "municipalities": ["espoo"], "epsilon": 1.0, "outcome": "service_status",
              "positive": ["home_care", "intensive"], "features": FEATURES}
    spec = build_spec("logistic_regression", "care-needs", "2024",
                      {**params, "categorical": ["health_segment"]} if categorical else params, registry)
    plan = plan_study(spec, registry)
    model, contract = plan.model, registry.get("health_care")
    assert spec.model is not None and model is not None and model.evaluation is not None
    frame = typed_extract(town / "espoo" / "health_care.parquet", contract, ephemeral_secret().pseudonym_key)
    design = encode(frame, frame[RESIDENT], spec.model, contract, model)
    e = model.evaluation
    with_noise, without = [], []
    for training in range(trainings):
        solver = newton_fit_in_process(design, model)
        covariance = solver.covariance()[1]
        exact, _ = evaluation_statistics(design, solver.estimate(), e.bins, e.prediction_weight, e.curvature_weight)
        read_with, read_without = [], []
        for _ in range(draws):
            noisy = gaussian_release(exact, e.histogram_noise_scale)
            read_with.append(private_evaluation(plan, noisy, 1, covariance)["evaluation"]["calibrated_within_intervals"])
            read_without.append(private_evaluation(plan, noisy, 1)["evaluation"]["calibrated_within_intervals"])
        with_noise.append(float(np.mean(read_with)))
        without.append(float(np.mean(read_without)))
        print(f"  training {training + 1}: calibrated in {with_noise[-1]:.3f} of draws with the training noise, "
              f"{without[-1]:.3f} without", flush=True)
    return with_noise, without


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=300_000)
    parser.add_argument("--trainings", type=int, default=12)
    parser.add_argument("--draws", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        town = Path(directory)
        synthesize(SynthConfig(out=town, residents=args.residents, municipalities=("espoo",), seed=7))
        for categorical, label in ((True, "segment as categories (the demo's model)"),
                                   (False, "segment as one scaled number (a wrong shape)")):
            print(label, flush=True)
            with_noise, without = _coverage(town, categorical, args.trainings, args.draws)
            print(f"{label}: calibrated in {np.mean(with_noise):.3f} of {args.trainings} x {args.draws} draws with "
                  f"the training noise [{min(with_noise):.3f}-{max(with_noise):.3f} per training], "
                  f"{np.mean(without):.3f} without [{min(without):.3f}-{max(without):.3f}]", flush=True)


if __name__ == "__main__":
    main()
