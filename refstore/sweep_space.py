"""Sweep configurations: the parameter space, its grid points and random draws.

A sweep configuration is the dictionary experiment trackers use::

    {"method": "grid" | "random" | "bayes",
     "metric": {"name": "val_acc", "goal": "maximize" | "minimize"},
     "parameters": {
         "lr": {"values": [0.1, 0.01]},          # one of these
         "epochs": {"value": 3},                 # always this
         "dropout": {"min": 0.1, "max": 0.5},    # uniform in [min, max]
         "batch": {"distribution": "int_uniform", "min": 16, "max": 64},
         "optimizer": {"parameters": {           # nested: config["optimizer"]
             "name": {"values": ["sgd", "adam"]},
             "momentum": {"min": 0.8, "max": 0.99}}}},
     "random_trials": 8}                         # bayes only: see below

A parameter whose spec is ``{"parameters": {...}}`` nests: the trial's
config holds a dictionary under its name. The parameters that draw values
are the leaves of that tree, named by their path (``optimizer.momentum``).

Trials are numbered 0, 1, ...; :meth:`SearchSpace.trial` turns a number into
the trial's parameters. Grid points are enumerated in a fixed order (leaves
sorted by path, the first varying slowest), and random draws are seeded by
the sweep id and the trial number, so a trial's parameters do not depend on
which process draws them. A bayes sweep draws its first ``random_trials``
trials (default: ``max(5, 2 x the leaves that vary)``) the way a random one
does; :mod:`refstore.sweep_bayes` chooses the rest. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from refstore.errors import RefstoreError

__all__ = ["METHODS", "Leaf", "Metric", "SearchSpace", "parse_sweep_config"]

Method = Literal["bayes", "grid", "random"]
METHODS: tuple[Method, ...] = ("bayes", "grid", "random")
GOALS = ("maximize", "minimize")
_DISTRIBUTIONS = (
    "categorical",
    "constant",
    "int_uniform",
    "log_uniform_values",
    "normal",
    "q_normal",
    "q_uniform",
    "uniform",
)
# The keys of a leaf's spec; a nested spec holds "parameters" and none of them.
_LEAF_KEYS = ("distribution", "values", "value", "min", "max", "mu", "sigma", "q")
_MIN_RANDOM_TRIALS = 5


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    goal: Literal["maximize", "minimize"]

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` beats ``b`` under this goal."""
        return a > b if self.goal == "maximize" else a < b

    def value_in(self, summary: Mapping[str, Any]) -> float | None:
        """The metric a run reported in its summary; None if none (or NaN)."""
        value = summary.get(self.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return None if math.isnan(value) else float(value)

    def loss(self, value: float) -> float:
        """``value`` on a scale where lower is better, whatever the goal."""
        return -value if self.goal == "maximize" else value


@dataclasses.dataclass(frozen=True)
class Leaf:
    """A parameter that takes values: a top-level one, or one nested deeper."""

    path: tuple[str, ...]
    spec: Mapping[str, Any]
    kind: str  # one of _DISTRIBUTIONS

    @property
    def name(self) -> str:
        """The dotted path, as ``config.a.b`` filters and columns name it."""
        return ".".join(self.path)

    @property
    def choices(self) -> list[Any]:
        """The grid values of a categorical or constant leaf."""
        return list(self.spec["values"]) if "values" in self.spec else [self.value]

    @property
    def value(self) -> Any:
        return self.spec["value"]

    def draw(self, rng: random.Random) -> Any:
        return _DRAWS[self.kind](self.spec, rng)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    method: Method
    metric: Metric | None
    parameters: Mapping[str, Mapping[str, Any]]  # as configured, nesting included
    leaves: tuple[Leaf, ...]  # sorted by path
    random_trials: int = 0  # bayes: trials drawn at random before it models

    @property
    def grid_size(self) -> int | None:
        """How many grid points there are; None for random and bayes search."""
        if self.method != "grid":
            return None
        return math.prod(len(leaf.choices) for leaf in self.leaves)

    def trial(self, number: int, seed: str) -> dict[str, Any] | None:
        """The parameters of trial ``number``; None when the grid is used up.

        For a bayes sweep this is the random draw its first trials take.
        """
        if self.method == "grid":
            return self._grid_point(number)
        rng = random.Random(f"{seed}:{number}")  # noqa: S311 (not for secrets)
        return self.nest({leaf.name: leaf.draw(rng) for leaf in self.leaves})

    def nest(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Leaf values by dotted name, as the nested config a trial gets."""
        config: dict[str, Any] = {}
        for leaf in self.leaves:
            if leaf.name in values:
                *parents, last = leaf.path
                inner = config
                for part in parents:
                    inner = inner.setdefault(part, {})
                inner[last] = values[leaf.name]
        return config

    def values_in(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The leaf values a run's config holds, by dotted name.

        A leaf absent from the config (a run edited since) is left out.
        """
        found: dict[str, Any] = {}
        for leaf in self.leaves:
            value: Any = config
            for part in leaf.path:
                if not isinstance(value, Mapping) or part not in value:
                    break
                value = value[part]
            else:
                found[leaf.name] = value
        return found

    def _grid_point(self, number: int) -> dict[str, Any] | None:
        if number >= (self.grid_size or 0):
            return None
        # ``number`` in mixed radix, the last leaf the fastest digit: the
        # order of itertools.product without walking it.
        point: dict[str, Any] = {}
        for leaf in reversed(self.leaves):
            choices = leaf.choices
            number, index = divmod(number, len(choices))
            point[leaf.name] = choices[index]
        return self.nest(point)


def parse_sweep_config(config: Mapping[str, Any]) -> SearchSpace:
    """Validate a sweep configuration; every error names the field to fix."""
    method = _method(config.get("method"))
    metric = _metric(config.get("metric"))
    if method == "bayes" and metric is None:
        raise _error(
            'a bayes sweep needs the metric it optimizes: add "metric": '
            '{"name": ..., "goal": "maximize" or "minimize"}'
        )
    parameters = config.get("parameters")
    leaves = sorted(_leaves(parameters, (), grid=method == "grid"), key=_path)
    _check_unique_names(leaves)
    random_trials = _random_trials(config, method, leaves)
    assert isinstance(parameters, Mapping)  # _leaves refused anything else
    return SearchSpace(method, metric, dict(parameters), tuple(leaves), random_trials)


def _path(leaf: Leaf) -> tuple[str, ...]:
    return leaf.path


def _method(value: Any) -> Method:
    for method in METHODS:
        if value == method:
            return method
    raise _error(f"method must be one of {', '.join(METHODS)}, not {value!r}")


def _metric(value: Any) -> Metric | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise _error('"metric" must be {"name": ..., "goal": "maximize"|"minimize"}')
    goal = value.get("goal", "minimize")
    if goal not in GOALS:
        raise _error(f"metric goal must be maximize or minimize, not {goal!r}")
    return Metric(value["name"], goal)


def _leaves(parameters: Any, parent: tuple[str, ...], *, grid: bool) -> Iterator[Leaf]:
    """The leaves under ``parameters``, each checked; nested specs recurse."""
    if not isinstance(parameters, Mapping) or not parameters:
        where = f"parameter {'.'.join(parent)!r}: " if parent else ""
        raise _error(f'{where}"parameters" must map each parameter name to its spec')
    for key, spec in parameters.items():
        path = (*parent, str(key))
        name = ".".join(path)
        if not str(key):
            raise _error(f"parameter names must not be empty (in {name!r})")
        if isinstance(spec, Mapping) and "parameters" in spec:
            _check_nested(name, spec)
            yield from _leaves(spec["parameters"], path, grid=grid)
        else:
            yield _leaf(path, spec, grid=grid)


def _check_nested(name: str, spec: Mapping[str, Any]) -> None:
    mixed = ", ".join(repr(key) for key in _LEAF_KEYS if key in spec)
    if mixed:
        raise _error(
            f"parameter {name!r} mixes 'parameters' with {mixed}; "
            "a nested parameter holds only 'parameters' (move the others into it)"
        )


def _leaf(path: tuple[str, ...], spec: Any, *, grid: bool) -> Leaf:
    name = ".".join(path)
    if not isinstance(spec, Mapping):
        raise _error(f"parameter {name!r} must be a dict such as {{'values': [...]}}")
    kind = _kind(name, spec)
    if grid and kind not in ("categorical", "constant"):
        raise _error(
            f"parameter {name!r}: a grid sweep needs 'values' or 'value'; "
            f"{kind} draws belong to method 'random' or 'bayes'"
        )
    _check_fields(name, spec, kind)
    return Leaf(path, dict(spec), kind)


def _kind(name: str, spec: Mapping[str, Any]) -> str:
    if "distribution" in spec:
        kind = spec["distribution"]
        if kind not in _DISTRIBUTIONS:
            raise _error(
                f"parameter {name!r}: unknown distribution {kind!r}; use one of "
                f"{', '.join(_DISTRIBUTIONS)}"
            )
        return str(kind)
    if "values" in spec:
        return "categorical"
    if "value" in spec:
        return "constant"
    if "min" in spec and "max" in spec:
        both_int = all(_is_int(spec[k]) for k in ("min", "max"))
        return "int_uniform" if both_int else "uniform"
    raise _error(
        f"parameter {name!r} needs 'values', 'value', 'min' and 'max', "
        f"'parameters' (nested), or a 'distribution' ({', '.join(_DISTRIBUTIONS)})"
    )


_NEEDS = {
    "categorical": ("values",),
    "constant": ("value",),
    "int_uniform": ("min", "max"),
    "uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
    "q_uniform": ("min", "max"),
    "normal": (),
    "q_normal": (),
}


def _check_fields(name: str, spec: Mapping[str, Any], kind: str) -> None:
    missing = [field for field in _NEEDS[kind] if field not in spec]
    if missing:
        raise _error(f"parameter {name!r} ({kind}) needs {', '.join(missing)}")
    if kind == "categorical" and not (
        isinstance(spec["values"], list) and spec["values"]
    ):
        raise _error(f"parameter {name!r}: 'values' must be a non-empty list")
    _check_numbers(name, spec, kind)


def _check_numbers(name: str, spec: Mapping[str, Any], kind: str) -> None:
    for field in ("min", "max", "mu", "sigma", "q"):
        if field in spec and not _is_number(spec[field]):
            raise _error(f"parameter {name!r}: {field!r} must be a number")
    if "min" in spec and "max" in spec and not spec["min"] < spec["max"]:
        raise _error(f"parameter {name!r}: 'min' must be below 'max'")
    if kind == "int_uniform" and not (_is_int(spec["min"]) and _is_int(spec["max"])):
        raise _error(f"parameter {name!r}: int_uniform needs integer min and max")
    if kind == "log_uniform_values" and spec["min"] <= 0:
        raise _error(f"parameter {name!r}: log_uniform_values needs min > 0")
    for field in ("sigma", "q"):
        if field in spec and spec[field] <= 0:
            raise _error(f"parameter {name!r}: {field!r} must be above 0")


def _check_unique_names(leaves: list[Leaf]) -> None:
    # {"a.b": ...} and {"a": {"parameters": {"b": ...}}} would both read a.b.
    names = [leaf.name for leaf in leaves]
    clashing = sorted({name for name in names if names.count(name) > 1})
    if clashing:
        raise _error(
            f"parameters {', '.join(clashing)} are named twice (a dotted name "
            "and a nested one); rename one of them"
        )


def _random_trials(
    config: Mapping[str, Any], method: Method, leaves: list[Leaf]
) -> int:
    if "random_trials" not in config:
        varying = sum(1 for leaf in leaves if leaf.kind != "constant")
        return max(_MIN_RANDOM_TRIALS, 2 * varying) if method == "bayes" else 0
    value = config["random_trials"]
    if method != "bayes":
        raise _error(f'"random_trials" applies to method bayes, not {method}')
    if not _is_int(value) or value < 1:
        raise _error(f'"random_trials" must be a whole number above 0, not {value!r}')
    return int(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _quantized(value: float, step: float) -> float:
    return float(round(value / step) * step)


_DRAWS: dict[str, Callable[[Mapping[str, Any], random.Random], Any]] = {
    "categorical": lambda spec, rng: rng.choice(spec["values"]),
    "constant": lambda spec, rng: spec["value"],
    "int_uniform": lambda spec, rng: rng.randint(spec["min"], spec["max"]),
    "uniform": lambda spec, rng: rng.uniform(spec["min"], spec["max"]),
    "log_uniform_values": lambda spec, rng: math.exp(
        rng.uniform(math.log(spec["min"]), math.log(spec["max"]))
    ),
    "q_uniform": lambda spec, rng: _quantized(
        rng.uniform(spec["min"], spec["max"]), spec.get("q", 1)
    ),
    "normal": lambda spec, rng: rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0)),
    "q_normal": lambda spec, rng: _quantized(
        rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0)), spec.get("q", 1)
    ),
}


def _error(message: str) -> RefstoreError:
    return RefstoreError(f"invalid sweep configuration: {message}")
