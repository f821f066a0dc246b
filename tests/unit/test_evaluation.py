"""Private evaluation: AUC and calibration from noisy score histograms, unbiased, with intervals that cover."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from federation.evaluation import LOGIT_RANGE, auc_estimate, calibration_groups, private_evaluation
from federation.privacy import gaussian_release
from federation.tasks import Design, evaluation_statistics, predict_proba


def _histogram(rows: int = 60_000, seed: int = 2) -> tuple[np.ndarray, float]:
    """Exact score histograms of a known rare-outcome model (like the demo's care-needs model), and its AUC."""
    rng = np.random.default_rng(seed)   # test data, not privacy noise
    x = np.column_stack([rng.random((rows, 2)), np.ones(rows)])
    params = np.array([[4.0, 1.5, -5.0]])
    y = (rng.random(rows) < predict_proba(params, x)[:, 1]).astype(np.int64)
    histogram, _ = evaluation_statistics(Design(x=x, y=y, resident=np.arange(rows), residents=rows), params, 50)
    return histogram, float(roc_auc_score(y, x @ params[0]))



def test_the_auc_is_flagged_uninformative_where_the_noise_outweighs_the_rows_and_not_where_it_does_not() -> None:
    # Prepare: the same model's histograms, at its study noise and at noise that outweighs its rows
    histogram, _ = _histogram()
    quiet, loud = 13.4 * np.sqrt(3), 5_000.0
    # Execute: 100 noise draws (OpenDP's) at each scale
    flags_quiet = [auc_estimate(*gaussian_release(histogram, quiet)[:2], quiet)["auc_informative"] for _ in range(100)]
    loud_found = [auc_estimate(*gaussian_release(histogram, loud)[:2], loud) for _ in range(100)]
    # Assert: informative every time at the study's noise; at the loud noise uninformative exactly when the
    # interval spans chance and a perfect model or the estimate has left [0, 1], which is nearly always (2 % not)
    assert all(flags_quiet)
    for found in loud_found:
        if found["auc"] is None:
            assert found["auc_informative"] is False
            continue
        low, high = found["auc_interval"]
        spans = low <= 0.5 and high >= 1.0
        assert found["auc_informative"] is not (spans or not 0 <= found["auc"] <= 1)
    assert np.mean([bool(f["auc_informative"]) for f in loud_found]) < 0.1


def test_the_auc_from_noisy_histograms_is_unbiased_where_clipping_the_noise_was_not() -> None:
    # Prepare: exact histograms; the noise of three nodes at a tenth of epsilon 1 (sd ~23 per bin)
    histogram, exact = _histogram()
    noise_sd = 13.4 * np.sqrt(3)
    # Execute: 300 noise draws (OpenDP's), the estimator and the old one that clipped negative counts
    ours, clipped, covered = [], [], []
    for _ in range(300):
        noisy = gaussian_release(histogram, noise_sd)
        found = auc_estimate(noisy[0], noisy[1], noise_sd)
        ours.append(found["auc"])
        covered.append(found["auc_interval"][0] <= exact <= found["auc_interval"][1])
        clipped.append(auc_estimate(np.clip(noisy[0], 0, None), np.clip(noisy[1], 0, None), noise_sd)["auc"])
    # Assert: bias under 0.005 (only the binning's), the noise interval covers the exact AUC ~95 % of the time,
    # and clipping was biased low
    assert abs(np.mean(ours) - exact) < 0.005, (np.mean(ours), exact)
    assert np.mean(covered) >= 0.9
    assert np.mean(clipped) < np.mean(ours) - 0.005


def test_calibration_groups_are_unbiased_and_their_intervals_cover_every_group_together() -> None:
    # (a group's predicted rate is the noisy sum of predicted probabilities over its noisy rows: a third row)
    # Prepare
    histogram, _ = _histogram()
    noise_sd = 13.4 * np.sqrt(3)
    edges = np.linspace(*LOGIT_RANGE, 51)
    # Execute: per draw, each group's observed rate against the exact rate of the same bins
    errors, all_covered = [], []
    for _ in range(300):
        groups = private_evaluation(gaussian_release(histogram, noise_sd), noise_sd)["calibration"]
        covered = True
        for group in groups:
            lo, hi = (int(np.argmin(abs(edges - v))) for v in group["logit_range"])
            exact = histogram[1, lo:hi].sum() / histogram[:2, lo:hi].sum()
            errors.append(group["observed"] - exact)
            covered &= group["interval"][0] <= exact <= group["interval"][1]
        all_covered.append(covered)
    # Assert: observed rates unbiased; the simultaneous intervals hold for all groups at once >= ~95 %
    assert abs(np.mean(errors)) < 0.005
    assert np.mean(all_covered) >= 0.9


def test_a_calibrated_model_reads_as_calibrated_and_a_miscalibrated_one_does_not() -> None:
    # Prepare: the same rows scored by the true model and by one whose logits are all shifted up by 1
    rng = np.random.default_rng(4)
    x = np.column_stack([rng.random((100_000, 1)), np.ones(100_000)])
    truth = np.array([[3.0, -2.0]])
    y = (rng.random(100_000) < predict_proba(truth, x)[:, 1]).astype(np.int64)
    design = Design(x=x, y=y, resident=np.arange(100_000), residents=100_000)
    # Execute
    right = private_evaluation(evaluation_statistics(design, truth, 50)[0], 20.0)
    wrong = private_evaluation(evaluation_statistics(design, truth + [[0.0, 1.0]], 50)[0], 20.0)
    # Assert
    assert right["calibrated_within_intervals"] and len(right["calibration"]) >= 5
    assert not wrong["calibrated_within_intervals"]
    assert right["auc"] == pytest.approx(roc_auc_score(y, x @ truth[0]), abs=0.005)


def test_the_calibration_intervals_take_in_the_training_noise_left_in_the_parameters() -> None:
    # Prepare: a rare-outcome model with a three-level category; "trained" models are the true one plus noise
    # of a known covariance (as DP training leaves it, the optimizer's estimate of it); bins noised as 3 nodes'
    rng = np.random.default_rng(6)   # test data and stand-in training noise, not privacy noise
    rows = 200_000
    level = rng.integers(0, 3, rows)
    x = np.column_stack([rng.random((rows, 2)), level == 1, level == 2, np.ones(rows)]).astype(float)
    truth = np.array([[2.0, 1.0, 0.8, 1.5, -4.0]])
    y = (rng.random(rows) < predict_proba(truth, x)[:, 1]).astype(np.int64)
    design = Design(x=x, y=y, resident=np.arange(rows), residents=rows)
    root = rng.normal(0.0, 0.06, (5, 5))
    covariance = root @ root.T + np.diag([0.01, 0.01, 0.02, 0.02, 0.01])
    weight, noise_sd = 2.0 / np.sqrt(4.0), 13.4 * np.sqrt(3)
    # Execute: 100 trainings, each evaluated once with and once without the training noise in the intervals,
    # and the widening from the noisy curvature rows against the same from exact ones
    edges = np.linspace(*LOGIT_RANGE, 51)
    with_training, without, estimated, exact_spread = [], [], [], []
    for _ in range(100):
        params = truth + rng.multivariate_normal(np.zeros(5), covariance)
        exact = evaluation_statistics(design, params, 50, 0.5, weight)[0]
        noisy = gaussian_release(exact, noise_sd)
        found = private_evaluation(noisy, noise_sd, 0.5, weight, covariance)
        with_training.append(found["calibrated_within_intervals"])
        without.append(private_evaluation(noisy, noise_sd, 0.5, weight)["calibrated_within_intervals"])
        for group in found["calibration"]:
            lo, hi = (int(np.argmin(abs(edges - v))) for v in group["logit_range"])
            slope = exact[3:, lo:hi].sum(axis=1) / weight / group["noisy_rows"]
            estimated.append(group["training_noise_se"] ** 2)
            exact_spread.append(slope @ covariance @ slope)
    # Assert: with the training noise the model of the right shape reads calibrated about as often as the
    # simultaneous 95 % intervals promise; without it, mostly not; and the noise on the curvature rows does
    # not inflate the widening (its bias is taken out)
    assert np.mean(with_training) >= 0.9, np.mean(with_training)
    assert np.mean(without) <= 0.5, np.mean(without)
    assert 0.85 <= np.mean(estimated) / np.mean(exact_spread) <= 1.15, np.mean(estimated) / np.mean(exact_spread)


def test_trailing_bins_whose_noise_would_empty_the_last_group_are_left_out_of_it() -> None:
    # Prepare: two groups clearly above the noise (sd 10: a group needs 20·10·√(2·width) rows), then trailing
    # bins whose noisy total is negative enough to take the last group to zero (it divided by zero before)
    negatives = np.array([900.0, 950.0, -600.0, -300.0])
    positives = np.array([50.0, 50.0, -40.0, -60.0])
    # Execute
    groups = calibration_groups(negatives, positives, noise_sd=10.0)
    kept = calibration_groups(np.array([900.0, 950.0, 5.0]), np.array([50.0, 50.0, 1.0]), noise_sd=10.0)
    # Assert: the trailing bins are left out, and every group's rows are positive; a harmless rest still joins
    assert [g["logit_range"] for g in groups] == [[-10.0, -5.0], [-5.0, 0.0]]
    assert all(g["noisy_rows"] > 0 and 0 <= g["observed"] <= 1 for g in groups)
    assert kept[-1]["logit_range"][1] == LOGIT_RANGE[1]
