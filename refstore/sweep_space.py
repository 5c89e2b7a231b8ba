"""Sweep configurations: the parameter space, its grid points and random draws.

A sweep configuration is the dictionary experiment trackers use::

    {"method": "grid" | "random",
     "metric": {"name": "val_acc", "goal": "maximize" | "minimize"},
     "parameters": {
         "lr": {"values": [0.1, 0.01]},          # one of these
         "epochs": {"value": 3},                 # always this
         "dropout": {"min": 0.1, "max": 0.5},    # random: uniform in [min, max]
         "batch": {"distribution": "int_uniform", "min": 16, "max": 64}}}

Trials are numbered 0, 1, ...; :meth:`SearchSpace.trial` turns a number into
the trial's parameters. Grid points are enumerated in a fixed order
(parameters sorted by name, the first varying slowest), and random draws are
seeded by the sweep id and the trial number, so a trial's parameters do not
depend on which process draws them. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Mapping
from typing import Any, Literal

from refstore.errors import RefstoreError

__all__ = ["METHODS", "Metric", "SearchSpace", "parse_sweep_config"]

METHODS = ("grid", "random")
GOALS = ("maximize", "minimize")
_DISTRIBUTIONS = (
    "categorical",
    "constant",
    "int_uniform",
    "log_uniform_values",
    "normal",
    "q_uniform",
    "uniform",
)


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    goal: Literal["maximize", "minimize"]

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` beats ``b`` under this goal."""
        return a > b if self.goal == "maximize" else a < b


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    method: Literal["grid", "random"]
    metric: Metric | None
    parameters: Mapping[str, Mapping[str, Any]]

    @property
    def grid_size(self) -> int | None:
        """How many grid points there are; None for random search."""
        if self.method != "grid":
            return None
        return math.prod(len(_choices(spec)) for spec in self.parameters.values())

    def trial(self, number: int, seed: str) -> dict[str, Any] | None:
        """The parameters of trial ``number``; None when the grid is used up."""
        if self.method == "grid":
            return self._grid_point(number)
        rng = random.Random(f"{seed}:{number}")  # noqa: S311 (not for secrets)
        return {
            name: _draw(spec, rng) for name, spec in sorted(self.parameters.items())
        }

    def _grid_point(self, number: int) -> dict[str, Any] | None:
        if number >= (self.grid_size or 0):
            return None
        # ``number`` in mixed radix, the last parameter the fastest digit: the
        # order of itertools.product without walking it.
        point: dict[str, Any] = {}
        for name in sorted(self.parameters, reverse=True):
            choices = _choices(self.parameters[name])
            number, index = divmod(number, len(choices))
            point[name] = choices[index]
        return dict(sorted(point.items()))


def parse_sweep_config(config: Mapping[str, Any]) -> SearchSpace:
    """Validate a sweep configuration; every error names the field to fix."""
    method = config.get("method")
    if method not in METHODS:
        raise _error(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    parameters = config.get("parameters")
    if not isinstance(parameters, Mapping) or not parameters:
        raise _error('"parameters" must map each parameter name to its values')
    for name, spec in parameters.items():
        _check_parameter(str(name), spec, grid=method == "grid")
    return SearchSpace(method, _metric(config.get("metric")), dict(parameters))


def _metric(value: Any) -> Metric | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise _error('"metric" must be {"name": ..., "goal": "maximize"|"minimize"}')
    goal = value.get("goal", "minimize")
    if goal not in GOALS:
        raise _error(f"metric goal must be maximize or minimize, not {goal!r}")
    return Metric(value["name"], goal)


def _check_parameter(name: str, spec: Any, *, grid: bool) -> None:
    if not isinstance(spec, Mapping):
        raise _error(f"parameter {name!r} must be a dict such as {{'values': [...]}}")
    kind = _kind(spec)
    if kind is None:
        raise _error(
            f"parameter {name!r} needs 'values', 'value', 'min' and 'max', or a "
            f"'distribution' ({', '.join(_DISTRIBUTIONS)})"
        )
    if grid and kind not in ("categorical", "constant"):
        raise _error(
            f"parameter {name!r}: a grid sweep needs 'values' or 'value'; "
            f"{kind} draws belong to method 'random'"
        )
    _check_fields(name, spec, kind)


def _kind(spec: Mapping[str, Any]) -> str | None:
    if "distribution" in spec:
        kind = spec["distribution"]
        return kind if kind in _DISTRIBUTIONS else None
    if "values" in spec:
        return "categorical"
    if "value" in spec:
        return "constant"
    if "min" in spec and "max" in spec:
        both_int = all(isinstance(spec[k], int) for k in ("min", "max"))
        return "int_uniform" if both_int else "uniform"
    return None


_NEEDS = {
    "categorical": ("values",),
    "constant": ("value",),
    "int_uniform": ("min", "max"),
    "uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
    "q_uniform": ("min", "max"),
    "normal": (),
}


def _check_fields(name: str, spec: Mapping[str, Any], kind: str) -> None:
    missing = [field for field in _NEEDS[kind] if field not in spec]
    if missing:
        raise _error(f"parameter {name!r} ({kind}) needs {', '.join(missing)}")
    if kind == "categorical" and not (
        isinstance(spec["values"], list) and spec["values"]
    ):
        raise _error(f"parameter {name!r}: 'values' must be a non-empty list")
    if "min" in spec and not spec["min"] < spec["max"]:
        raise _error(f"parameter {name!r}: 'min' must be below 'max'")
    if kind == "log_uniform_values" and spec["min"] <= 0:
        raise _error(f"parameter {name!r}: log_uniform_values needs min > 0")


def _choices(spec: Mapping[str, Any]) -> list[Any]:
    return list(spec["values"]) if "values" in spec else [spec["value"]]


def _draw(spec: Mapping[str, Any], rng: random.Random) -> Any:
    kind = _kind(spec)
    assert kind is not None  # parse_sweep_config checked every parameter
    return _DRAWS[kind](spec, rng)


def _q_uniform(spec: Mapping[str, Any], rng: random.Random) -> float:
    step = spec.get("q", 1)
    return float(round(rng.uniform(spec["min"], spec["max"]) / step) * step)


_DRAWS: dict[str, Callable[[Mapping[str, Any], random.Random], Any]] = {
    "categorical": lambda spec, rng: rng.choice(spec["values"]),
    "constant": lambda spec, rng: spec["value"],
    "int_uniform": lambda spec, rng: rng.randint(spec["min"], spec["max"]),
    "uniform": lambda spec, rng: rng.uniform(spec["min"], spec["max"]),
    "log_uniform_values": lambda spec, rng: math.exp(
        rng.uniform(math.log(spec["min"]), math.log(spec["max"]))
    ),
    "q_uniform": _q_uniform,
    "normal": lambda spec, rng: rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0)),
}


def _error(message: str) -> RefstoreError:
    return RefstoreError(f"invalid sweep configuration: {message}")
