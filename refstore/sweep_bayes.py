"""Bayesian search for sweeps: a Tree-structured Parzen Estimator (TPE).

TPE splits the trials that reported the metric into the best quarter
("good") and the rest ("bad"), models each leaf parameter's values in the
two groups with a kernel density (a Parzen estimator: one Gaussian kernel
per observed value, plus a broad prior), and proposes, per leaf, the value
among a few draws from the good density where good is most likely relative
to bad. It suits sweep spaces: categorical values, bounded, log-scale,
integer and unbounded normal parameters all fit, and it needs no linear
algebra, so it stays pure Python. Leaves are modelled independently, as in
the original TPE; this misses interactions between parameters, which a
sweep of a few dozen trials could not estimate anyway.

Every proposal is seeded by the sweep and the trial number, so the same
history gives the same trial parameters in any process. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from refstore.sweep_space import Leaf, SearchSpace

__all__ = ["Observation", "observe", "suggest"]

# The share of observations that model "good" values: hyperopt's default,
# and a good trade between exploring and exploiting at sweep sizes.
_GOOD_SHARE = 0.25
_MAX_GOOD = 25
# Draws from the good density per leaf; more exploits harder.
_CANDIDATES = 24
# Below this, "good" and "bad" would not both hold an observation.
_MIN_OBSERVATIONS = 2
_SQRT2 = math.sqrt(2.0)


@dataclasses.dataclass(frozen=True)
class Observation:
    """A trial that reported the metric: its leaf values and its loss."""

    values: Mapping[str, Any]  # by the leaf's dotted name
    loss: float  # the metric, lower is better whatever the goal


def observe(
    space: SearchSpace, trials: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]
) -> list[Observation]:
    """Observations from trials' ``(config, summary)``; unreported ones skipped."""
    metric = space.metric
    assert metric is not None  # parse_sweep_config requires it for bayes
    found: list[Observation] = []
    for config, summary in trials:
        value = metric.value_in(summary)
        if value is not None:
            found.append(Observation(space.values_in(config), metric.loss(value)))
    return found


def suggest(
    space: SearchSpace, number: int, seed: str, history: Sequence[Observation]
) -> dict[str, Any]:
    """The parameters of trial ``number`` of a bayes sweep, nested as configured.

    The first ``space.random_trials`` trials, and any trial that finds fewer
    than two observations (other agents' trials still running), take the
    random draw a random sweep would.
    """
    if number < space.random_trials or len(history) < _MIN_OBSERVATIONS:
        drawn = space.trial(number, seed)
        assert drawn is not None  # only a grid runs out
        return drawn
    rng = random.Random(f"{seed}:{number}:tpe")  # noqa: S311 (not for secrets)
    good, bad = _split(history)
    values = {leaf.name: _propose(leaf, good, bad, rng) for leaf in space.leaves}
    return space.nest(values)


def _split(
    history: Sequence[Observation],
) -> tuple[list[Observation], list[Observation]]:
    # sorted() is stable: among equal losses the earlier trial ranks first.
    ranked = sorted(history, key=lambda observation: observation.loss)
    count = min(_MAX_GOOD, max(1, math.ceil(_GOOD_SHARE * len(ranked))))
    return ranked[:count], ranked[count:]


def _propose(
    leaf: Leaf, good: list[Observation], bad: list[Observation], rng: random.Random
) -> Any:
    if leaf.kind == "constant":
        return leaf.value
    if leaf.kind == "categorical":
        return _propose_choice(leaf, good, bad, rng)
    return _propose_number(_Axis.of(leaf), good, bad, rng)


# -- categorical leaves -----------------------------------------------------


def _propose_choice(
    leaf: Leaf, good: list[Observation], bad: list[Observation], rng: random.Random
) -> Any:
    choices = leaf.choices
    good_weights = _choice_weights(leaf, choices, good)
    bad_weights = _choice_weights(leaf, choices, bad)
    drawn = rng.choices(range(len(choices)), weights=good_weights, k=_CANDIDATES)
    best = max(drawn, key=lambda index: good_weights[index] / bad_weights[index])
    return choices[best]


def _choice_weights(
    leaf: Leaf, choices: list[Any], observations: list[Observation]
) -> list[float]:
    # One pseudo-count per choice: a value no trial took yet keeps a chance.
    counts = [1.0] * len(choices)
    for observation in observations:
        index = _index(choices, observation.values.get(leaf.name, _ABSENT))
        if index is not None:
            counts[index] += 1.0
    total = sum(counts)
    return [count / total for count in counts]


_ABSENT = object()


def _index(choices: list[Any], value: Any) -> int | None:
    for index, choice in enumerate(choices):
        # 1 == True in Python, but a flag is no number.
        if isinstance(choice, bool) == isinstance(value, bool) and choice == value:
            return index
    return None


# -- numeric leaves ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Axis:
    """A numeric leaf on the scale TPE models it: log for log-uniform leaves,
    integers widened by half a step so that each has an equal share.
    """

    leaf: Leaf
    low: float
    high: float
    bounded: bool  # normal leaves are not: their kernels are not truncated
    prior: tuple[float, float]  # mean and spread of the broad prior kernel

    @classmethod
    def of(cls, leaf: Leaf) -> _Axis:
        spec = leaf.spec
        if leaf.kind in ("normal", "q_normal"):
            mu, sigma = float(spec.get("mu", 0.0)), float(spec.get("sigma", 1.0))
            return cls(leaf, mu - 3 * sigma, mu + 3 * sigma, False, (mu, sigma))
        low, high = float(spec["min"]), float(spec["max"])
        if leaf.kind == "log_uniform_values":
            low, high = math.log(low), math.log(high)
        if leaf.kind == "int_uniform":
            low, high = low - 0.5, high + 0.5
        return cls(leaf, low, high, True, ((low + high) / 2, high - low))

    def to_model(self, value: Any) -> float | None:
        """An observed value on this axis; None if it cannot be one."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if self.leaf.kind == "log_uniform_values":
            return math.log(value) if value > 0 else None
        return float(value)

    def from_model(self, x: float) -> Any:
        """A point of this axis as the value the trial gets."""
        spec, kind = self.leaf.spec, self.leaf.kind
        if kind == "int_uniform":
            return min(max(round(x), spec["min"]), spec["max"])
        if kind == "log_uniform_values":
            return min(max(math.exp(x), spec["min"]), spec["max"])
        if kind in ("q_uniform", "q_normal"):
            step = spec.get("q", 1)
            return float(round(x / step) * step)
        return min(max(x, spec["min"]), spec["max"]) if self.bounded else x

    def clip(self, x: float) -> float:
        return min(max(x, self.low), self.high) if self.bounded else x


@dataclasses.dataclass(frozen=True)
class _Kernel:
    mean: float
    spread: float


def _propose_number(
    axis: _Axis, good: list[Observation], bad: list[Observation], rng: random.Random
) -> Any:
    good_kernels = _parzen(axis, _points(axis, good))
    bad_kernels = _parzen(axis, _points(axis, bad))
    drawn = [_sample(axis, good_kernels, rng) for _ in range(_CANDIDATES)]
    best = max(
        drawn,
        key=lambda x: (
            _log_density(axis, good_kernels, x) - _log_density(axis, bad_kernels, x)
        ),
    )
    return axis.from_model(best)


def _points(axis: _Axis, observations: list[Observation]) -> list[float]:
    points = (axis.to_model(o.values.get(axis.leaf.name)) for o in observations)
    return [point for point in points if point is not None]


def _parzen(axis: _Axis, points: list[float]) -> list[_Kernel]:
    """A kernel per point, as wide as its larger gap to a neighbour, and the prior.

    The gaps adapt the width to how densely trials sampled a region; the
    floor and the ceiling keep one kernel from collapsing onto its point or
    from flattening the whole axis.
    """
    span = axis.high - axis.low
    floor = span / min(100, 1 + len(points))
    ordered = sorted(points)
    edges = [axis.low, *ordered, axis.high]
    kernels = []
    for i, point in enumerate(ordered):
        gap = max(abs(point - edges[i]), abs(edges[i + 2] - point))
        kernels.append(_Kernel(point, min(max(gap, floor), span)))
    kernels.append(_Kernel(*axis.prior))
    return kernels


def _sample(axis: _Axis, kernels: list[_Kernel], rng: random.Random) -> float:
    kernel = rng.choice(kernels)  # the mixture weighs its kernels equally
    for _ in range(16):
        x = rng.gauss(kernel.mean, kernel.spread)
        if not axis.bounded or axis.low <= x <= axis.high:
            return x
    # A kernel far outside a bounded axis (a config edited since the trial).
    return axis.clip(kernel.mean)


def _log_density(axis: _Axis, kernels: list[_Kernel], x: float) -> float:
    total = 0.0
    for kernel in kernels:
        z = (x - kernel.mean) / kernel.spread
        density = math.exp(-0.5 * z * z) / (kernel.spread * math.sqrt(2 * math.pi))
        total += density / _mass(axis, kernel)
    return math.log(max(total / len(kernels), 1e-300))


def _mass(axis: _Axis, kernel: _Kernel) -> float:
    """The share of a kernel inside a bounded axis, which truncates it."""
    if not axis.bounded:
        return 1.0
    below = _normal_cdf((axis.low - kernel.mean) / kernel.spread)
    above = _normal_cdf((axis.high - kernel.mean) / kernel.spread)
    return max(above - below, 1e-12)


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / _SQRT2))
