"""Declarative checks of arguments and settings, in the style of scikit-learn's parameter checks.

Every public entry point checks its arguments once, up front, with one call such as::

    check_params("train_mmcl", seed=(seed, [NONNEG_INT]), device=(device, [DEVICE, None]))

and every field of a profile or settings dataclass is checked in ``__post_init__`` with
:func:`check_fields`. A failed check raises :class:`InvalidParameterError` with one message that
names the argument, what is allowed and the value given::

    The 'steps' parameter of Profile must be an int in the range [1, inf). Got 0 instead.

Rules shared by every check: NumPy integers are integers; ``True``/``False`` are never numbers;
strings are never coerced to numbers; NaN is in no interval. The error keeps ``param``, ``value``,
``allowed`` and ``where`` as attributes, so the command line can name its own flag instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = [
    "InvalidParameterError",
    "Integral",
    "Real",
    "DeviceUnavailableError",
    "Interval",
    "Options",
    "SequenceOf",
    "InstanceOf",
    "Boolean",
    "IsNaN",
    "Device",
    "POSITIVE_INT",
    "NONNEG_INT",
    "PROBABILITY",
    "POSITIVE_REAL",
    "NONNEG_REAL",
    "BOOLEAN",
    "DEVICE",
    "SEEDS",
    "check_param",
    "check_params",
    "check_fields",
    "check_device",
    "is_integer",
]


class InvalidParameterError(ValueError, TypeError):
    """An argument or setting outside what is allowed (a ``ValueError`` and a ``TypeError``).

    Attributes:
        param: the argument's name; value: what was given; allowed: a phrase saying what is
        allowed (e.g. ``"an int in the range [1, inf)"``); where: the function or class checked.
    """

    def __init__(self, message: str, *, param: str = "", value: Any = None, allowed: str = "",
                 where: str = "") -> None:
        super().__init__(message)
        self.param, self.value, self.allowed, self.where = param, value, allowed, where


class DeviceUnavailableError(InvalidParameterError):
    """A device was asked for that this machine does not have (e.g. ``"cuda"`` without a GPU)."""


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


def is_integer(v: Any) -> bool:
    """True for an int or a NumPy integer, False for a bool (or anything else)."""
    return isinstance(v, Integral) and not _is_bool(v)


_is_int = is_integer


def _is_real(v: Any) -> bool:
    return isinstance(v, Real) and not _is_bool(v)


class _Constraint:
    def is_satisfied_by(self, value: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def normalize(self, value: Any) -> Any:
        return value

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class Interval(_Constraint):
    """Numbers of one kind (``Integral`` or ``Real``) between two bounds (``None`` = unbounded).

    Args:
        kind: ``numbers.Integral`` (ints, NumPy integers) or ``numbers.Real`` (also ints).
        left, right: bounds, or ``None`` for -inf / inf.
        closed: ``"both"``, ``"left"``, ``"right"`` or ``"neither"``.
    """

    def __init__(self, kind: type, left: float | None, right: float | None, closed: str = "both") -> None:
        if kind not in (Integral, Real) or closed not in ("both", "left", "right", "neither"):
            raise TypeError("Interval(kind in (Integral, Real), left, right, closed)")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def is_satisfied_by(self, value: Any) -> bool:
        if not (_is_int(value) if self.kind is Integral else _is_real(value)):
            return False
        v = float(value) if self.kind is Real else int(value)
        if self.kind is Real and (math.isnan(v) or (math.isinf(v) and self.right is None and v > 0)
                                  or (math.isinf(v) and self.left is None and v < 0)):
            return False
        if self.left is not None:
            if v < self.left or (v == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if v > self.right or (v == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def normalize(self, value: Any) -> Any:
        return int(value) if self.kind is Integral else float(value)

    def describe(self) -> str:
        kind = "an int" if self.kind is Integral else "a float"
        lo = "-inf" if self.left is None else repr(self.left)
        hi = "inf" if self.right is None else repr(self.right)
        lb = "[" if self.closed in ("both", "left") and self.left is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        return f"{kind} in the range {lb}{lo}, {hi}{rb}"


class Options(_Constraint):
    """One of a fixed set of values of one type (e.g. ``Options(str, {"cosine", "euclidean"})``)."""

    def __init__(self, kind: type, options: Iterable[Any]) -> None:
        self.kind, self.options = kind, tuple(options)

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.kind) and not (_is_bool(value) and self.kind is not bool) \
            and value in self.options

    def describe(self) -> str:
        return f"a {self.kind.__name__} among {{{', '.join(repr(o) for o in self.options)}}}"


class InstanceOf(_Constraint):
    """An instance of a class (``InstanceOf(CaptionBias)``)."""

    def __init__(self, kind: type | tuple[type, ...], name: str | None = None) -> None:
        self.kind = kind
        kinds = (kind,) if isinstance(kind, type) else kind
        self.name = name or " or ".join(k.__name__ for k in kinds)

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.kind)

    def describe(self) -> str:
        return f"an instance of {self.name!r}"


class Boolean(_Constraint):
    """``True`` or ``False`` (a NumPy bool too); never a number or a string."""

    def is_satisfied_by(self, value: Any) -> bool:
        return _is_bool(value)

    def normalize(self, value: Any) -> bool:
        return bool(value)

    def describe(self) -> str:
        return "a bool"


class SequenceOf(_Constraint):
    """A list or tuple (not a string) whose every item meets ``item``.

    Args:
        item: the constraint of each item.
        min_len: fewest items allowed.
        container: type of the normalised value (``list`` or ``tuple``).
    """

    def __init__(self, item: _Constraint, min_len: int = 1, container: type = list) -> None:
        self.item, self.min_len, self.container = item, min_len, container

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
            return False
        return len(value) >= self.min_len and all(self.item.is_satisfied_by(v) for v in value)

    def normalize(self, value: Any) -> Any:
        return self.container(self.item.normalize(v) for v in value)

    def describe(self) -> str:
        head = "a non-empty" if self.min_len == 1 else "a" if self.min_len == 0 else \
            f"a {self.min_len}-or-longer"
        if isinstance(self.item, InstanceOf):
            return f"{head} list of {self.item.name!r} instances"
        if isinstance(self.item, Options):
            return f"{head} list of values among {{{', '.join(repr(o) for o in self.item.options)}}}"
        item = self.item.describe()
        for article in ("an ", "a "):
            if item.startswith(article):
                item = item[len(article):]
                break
        return f"{head} list of {item.replace('int ', 'ints ', 1).replace('float ', 'floats ', 1)}"


class Device(_Constraint):
    """A device name or ``torch.device`` of type cpu, cuda or mps (availability: :func:`check_device`)."""

    _TYPES = ("cpu", "cuda", "mps")

    def is_satisfied_by(self, value: Any) -> bool:
        import torch

        if isinstance(value, torch.device):
            return value.type in self._TYPES
        if not isinstance(value, str):
            return False
        try:
            return torch.device(value).type in self._TYPES
        except (RuntimeError, ValueError):
            return False

    def normalize(self, value: Any) -> str:
        return str(value)

    def describe(self) -> str:
        return "a device 'cpu', 'cuda', 'cuda:N' or 'mps'"


class _NoneConstraint(_Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def describe(self) -> str:
        return "None"


class IsNaN(_Constraint):
    """A float NaN (e.g. an error rate of an attribute that is never mentioned)."""

    def is_satisfied_by(self, value: Any) -> bool:
        return _is_real(value) and math.isnan(float(value))

    def normalize(self, value: Any) -> float:
        return float(value)

    def describe(self) -> str:
        return "NaN"


#: Common constraints.
POSITIVE_INT = Interval(Integral, 1, None, closed="left")
NONNEG_INT = Interval(Integral, 0, None, closed="left")
PROBABILITY = Interval(Real, 0, 1, closed="both")
POSITIVE_REAL = Interval(Real, 0, None, closed="neither")
NONNEG_REAL = Interval(Real, 0, None, closed="left")
BOOLEAN = Boolean()
DEVICE = Device()
#: One non-negative seed, or a non-empty list of them.
SEEDS = (NONNEG_INT, SequenceOf(NONNEG_INT))


def _as_constraints(constraints: Any) -> list[_Constraint]:
    if isinstance(constraints, (_Constraint,)) or constraints is None:
        constraints = [constraints]
    out = []
    for c in constraints:
        out.append(_NoneConstraint() if c is None else c)
    return out


def _join(descriptions: list[str]) -> str:
    if len(descriptions) == 1:
        return descriptions[0]
    return ", ".join(descriptions[:-1]) + " or " + descriptions[-1]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_param(name: str, value: Any, constraints: Any, where: str = "",
                error: type[Exception] | None = None) -> Any:
    """Check one argument against one constraint or a list of them (any may hold).

    Args:
        name: the argument's name, as the caller wrote it.
        value: the value given.
        constraints: a constraint, ``None`` (the value may be None), or a list of those.
        where: the function or class whose argument this is (named in the message).
        error: raise this exception class (built from the message) instead, for modules with an
            error type of their own (e.g. ``InvalidIndexSetError``).

    Returns:
        the value, normalised (``np.int64(3)`` -> ``3``, ``2`` -> ``2.0`` for a float).

    Raises:
        InvalidParameterError: naming ``name``, what is allowed and ``value``.
    """
    cs = _as_constraints(constraints)
    for c in cs:
        if c.is_satisfied_by(value):
            return c.normalize(value)
    allowed = _join([c.describe() for c in cs])
    of = f" of {where}" if where else ""
    message = f"The {name!r} parameter{of} must be {allowed}. Got {_short(value)} instead."
    if error is not None and error is not InvalidParameterError:
        err = error(message)
        err.param, err.value, err.allowed, err.where = name, value, allowed, where
        raise err
    raise InvalidParameterError(message, param=name, value=value, allowed=allowed, where=where)


def check_params(where: str, **params: tuple[Any, Any]) -> dict[str, Any]:
    """Check several arguments at once: ``check_params("f", steps=(steps, [POSITIVE_INT]))``.

    Returns:
        the normalised values by name (the same order).
    """
    return {name: check_param(name, v, c, where) for name, (v, c) in params.items()}


def check_fields(obj: Any, spec: Mapping[str, Any]) -> None:
    """Check (and normalise in place) every field of a dataclass instance; for ``__post_init__``.

    Args:
        obj: the dataclass instance (frozen or not).
        spec: constraints per field name; every field must be listed (a missing one is a bug).
    """
    names = [f.name for f in fields(obj)]
    missing = sorted(set(names) - set(spec))
    if missing:
        raise TypeError(f"check_fields: no constraint for field(s) {missing} of {type(obj).__name__}.")
    where = type(obj).__name__
    for name in names:
        value = check_param(name, getattr(obj, name), spec[name], where)
        object.__setattr__(obj, name, value)


def check_device(device: Any, where: str = "", name: str = "device") -> str:
    """A usable device name: ``None`` -> :func:`~mmcl_helpers.core.profiles.default_device`.

    Raises:
        InvalidParameterError: not a device name.
        DeviceUnavailableError: ``cuda``/``mps`` asked for on a machine without one.
    """
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = check_param(name, device, [DEVICE, None], where)
    kind = torch.device(device).type
    of = f" of {where}" if where else ""
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"The {name!r} parameter{of} is {device!r}, but PyTorch sees no CUDA GPU on this machine "
            "(torch.cuda.is_available() is False). Use 'cpu', or None to pick the best available.",
            param=name, value=device, allowed="'cpu' (no CUDA GPU is available)", where=where,
        )
    if kind == "cuda":
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"The {name!r} parameter{of} is {device!r}, but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible.", param=name, value=device,
                allowed=f"'cuda:0'..'cuda:{torch.cuda.device_count() - 1}' or 'cpu'", where=where,
            )
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceUnavailableError(
            f"The {name!r} parameter{of} is {device!r}, but no Apple GPU (MPS) is available. Use 'cpu'.",
            param=name, value=device, allowed="'cpu' (no MPS device is available)", where=where,
        )
    return device
