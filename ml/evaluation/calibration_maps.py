"""The fits behind a region calibration (:mod:`ml.evaluation.calibration`): the logit and
sigmoid it maps through, and the isotonic, temperature and logistic fits it chooses among."""

from __future__ import annotations

import numpy as np

L2 = 1.0  # ridge on the standardised logistic weights: a few dozen regions must not overfit
NOVELTY_FLOOR = 1e-2  # log(novelty) is taken of at least this (a patch just like background)
_EPS = 1e-4


def logit(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, np.float64), _EPS, 1 - _EPS)
    return np.log(c / (1 - c))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def fit_isotonic(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """Knots (x, fitted y) of the non-decreasing least-squares fit (pool adjacent violators)."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order].astype(np.float64)
    vals, wts, lo = [], [], []  # blocks: mean, weight, first x
    for xv, yv in zip(xs, ys, strict=True):
        vals.append(yv)
        wts.append(1.0)
        lo.append(xv)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = wts[-2] + wts[-1]
            vals[-2] = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w
            wts[-2] = w
            del vals[-1], wts[-1], lo[-1]
    return [float(v) for v in lo], [float(v) for v in vals]


def fit_temperature(c: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(T, b) minimising the log loss of sigmoid((logit(c) - b) / T) on a coarse grid."""
    z = logit(c)
    best = (np.inf, 1.0, 0.0)
    for t in np.geomspace(0.05, 20.0, 41):
        for b in np.linspace(-6.0, 6.0, 49):
            p = np.clip(sigmoid((z - b) / t), _EPS, 1 - _EPS)
            loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
            if loss < best[0]:
                best = (loss, float(t), float(b))
    return best[1], best[2]


def log_novelty(n: np.ndarray | float) -> np.ndarray:
    return np.log(np.clip(np.asarray(n, np.float64), NOVELTY_FLOOR, None))


def fit_logistic(c: np.ndarray, area: np.ndarray, y: np.ndarray,
                  novelty: np.ndarray | None = None) -> tuple[float, float, float, float]:
    """(a, s, b, n) of sigmoid(a logit(c) + s log(area) + n log(novelty) + b) (n = 0 without
    ``novelty``): Newton steps on the log loss with an L2 penalty on the standardised
    weights (not the bias)."""
    cols = [logit(c), np.log(np.clip(area, 1e-12, 1.0))]
    if novelty is not None:
        cols.append(log_novelty(novelty))
    x = np.stack(cols, axis=1)
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = np.c_[(x - mu) / sd, np.ones(len(x))]
    d = z.shape[1]
    w = np.zeros(d)
    pen = np.diag([L2] * (d - 1) + [0.0])
    for _ in range(50):
        p = sigmoid(z @ w)
        grad = z.T @ (p - y) + pen @ w
        hess = (z * (p * (1 - p))[:, None]).T @ z + pen + 1e-9 * np.eye(d)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    raw = w[:-1] / sd  # back to the raw features
    bias = float(w[-1] - raw @ mu)
    return float(raw[0]), float(raw[1]), bias, float(raw[2]) if novelty is not None else 0.0
