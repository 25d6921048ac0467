"""Plain config data to frozen, typed records: every problem at once, each with its path.

A record class declares its fields as ``name: type = field(rule, default)``;
a *rule* turns one raw value (what YAML or JSON gave) into the typed value or
notes why it cannot, at the value's path (``stages.0.interpolate.factor``).
Records are built only through their rules, so a record that exists is valid:
``InterpolateStage(factor=2)`` in code goes the same way as the config file.

Why not pydantic, which this replaced: importing it and building the job's
13 models took ~0.15 s of every process that reads a config (the runner,
before ffmpeg can start, and the watchdog, on the cores the encoder wants),
more than the rest of the runner's imports together (docs/benchmarks.md).
msgspec imports fast but stops at the first problem; a config with nine
mistakes should be fixed in one round. The messages keep pydantic's wording,
which the docs and users already know.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, ParamSpec, TypeVar

Loc = tuple[str | int, ...]
P = ParamSpec("P")


class Invalid(ValueError):
    """Raised by a record built from bad data: ``problems`` are ``(path, message)`` pairs."""

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{describe_loc(loc)}: {msg}" for loc, msg in self.problems))


def describe_loc(loc: Loc) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


class Problems:
    """What is wrong so far, in the order found."""

    def __init__(self) -> None:
        self.found: list[tuple[Loc, str]] = []

    def add(self, loc: Loc, message: str) -> Bad:
        self.found.append((loc, message))
        return BAD


class Bad:
    """A value that failed its rule (its problem is noted); the record holding it is not built."""

    def __repr__(self) -> str:
        return "<bad>"


BAD = Bad()
Rule = Callable[[Any, Loc, Problems], Any]  # the value, or BAD with a problem noted


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()


class Field:
    """One field of a record: its rule, default and optional check against the fields before it."""

    def __init__(
        self,
        rule: Rule,
        default: Any = REQUIRED,
        *,
        factory: Callable[[], Any] | None = None,
        check: Callable[[Any, Mapping[str, Any]], Any] | None = None,
        parse_default: bool = False,
        dump: Callable[[Any], Any] | None = None,
    ) -> None:
        self.name = ""  # set by Record.__init_subclass__
        self.rule = rule
        self.default = default
        self.factory = factory
        self.check = check  # (value, the valid fields declared before) -> value; ValueError: a problem
        self.parse_default = parse_default
        self.dump = dump

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and self.factory is None

    def default_value(self, loc: Loc, problems: Problems) -> Any:
        value = self.factory() if self.factory is not None else self.default
        return self.rule(value, loc, problems) if self.parse_default else value


def _typed_any(make: Callable[P, Field]) -> Callable[P, Any]:
    return make


# For a record's class body: Field's arguments, typed Any so that ``x: int = field(...)`` type-checks.
field = _typed_any(Field)


UNKNOWN_KEY = "unknown key (not allowed here; check the spelling)"
R = TypeVar("R", bound="Record")


class Record:
    """A frozen config record. Subclasses declare fields; ``prepare`` and ``validate`` are hooks."""

    FIELDS: ClassVar[tuple[Field, ...]] = ()
    given: frozenset[str]  # the keys the data named (a default the user wrote out counts as given)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = []
        for name, value in list(vars(cls).items()):
            if isinstance(value, Field):
                value.name = name
                own.append(value)
        again = {f.name: f for f in own}  # a field declared again replaces the inherited one, in its place
        inherited = tuple(again.pop(f.name, f) for f in cls.FIELDS)
        cls.FIELDS = inherited + tuple(f for f in own if f.name in again)

    def __init__(self, **data: Any) -> None:
        problems = Problems()
        if self._fill(data, (), problems) is BAD or problems.found:
            raise Invalid(problems.found)

    # --- hooks ----------------------------------------------------------------------

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Reshape the raw mapping before the fields are read (ValueError: a problem at this record)."""
        return data

    def validate(self) -> None:
        """Rules across fields, once every field is valid (ValueError: a problem at this record)."""

    # --- building -------------------------------------------------------------------

    @classmethod
    def parse(cls: type[R], data: Any) -> R:
        """A record from raw data; Invalid lists every problem."""
        problems = Problems()
        record = cls.rule(data, (), problems)
        if record is BAD or problems.found:
            raise Invalid(problems.found)
        return record  # type: ignore[no-any-return]

    @classmethod
    def rule(cls, value: Any, loc: Loc, problems: Problems) -> Any:
        """The rule for a field that holds this record: a mapping, or a record already built."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            return problems.add(loc, f"Input should be a valid dictionary or instance of {cls.__name__}")
        record = object.__new__(cls)
        return record if record._fill(dict(value), loc, problems) is not BAD else BAD

    def _fill(self, data: dict[str, Any], loc: Loc, problems: Problems) -> Any:
        try:
            data = type(self).prepare(data)
        except ValueError as e:
            return problems.add(loc, str(e))
        values: dict[str, Any] = {}
        failed = False
        names = set()
        for f in self.FIELDS:
            names.add(f.name)
            where = (*loc, f.name)
            if f.name in data:
                value = f.rule(data[f.name], where, problems)
            elif f.required:
                value = problems.add(where, "Field required")
            else:
                value = f.default_value(where, problems)
            if value is not BAD and f.check is not None:
                try:
                    value = f.check(value, values)
                except ValueError as e:
                    value = problems.add(where, str(e))
            if value is BAD:
                failed = True
            else:
                values[f.name] = value
        for key in data:
            if key not in names:
                problems.add((*loc, key), UNKNOWN_KEY)
                failed = True
        if failed:
            return BAD
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "given", frozenset(k for k in data if k in names))
        try:
            self.validate()
        except ValueError as e:
            return problems.add(loc, str(e))
        return self

    def _set(self, name: str, value: Any) -> None:
        """For ``validate``: fill a derived default (a record is frozen to everyone else)."""
        object.__setattr__(self, name, value)

    # --- using ----------------------------------------------------------------------

    def replace(self: R, **changes: Any) -> R:
        """A copy with ``changes`` (values already of the field's type; they are not checked again)."""
        unknown = set(changes) - {f.name for f in self.FIELDS}
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        copy.__dict__["given"] = self.given | frozenset(changes)
        return copy

    def to_data(self, *, exclude: Iterable[str] = (), drop_none: bool = False) -> dict[str, Any]:
        """Plain JSON data, fields in declaration order (``drop_none``: leave out fields that are None)."""
        skip = set(exclude)
        out: dict[str, Any] = {}
        for f in self.FIELDS:
            if f.name in skip:
                continue
            value = getattr(self, f.name)
            if drop_none and value is None:
                continue
            out[f.name] = f.dump(value) if f.dump is not None else plain(value, drop_none=drop_none)
        return out

    @classmethod
    def field_named(cls, name: str) -> Field:
        for f in cls.FIELDS:
            if f.name == name:
                return f
        raise KeyError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen (setting {name}); make a copy with .replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and type(other) is type(self) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), _frozen(self._values())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.FIELDS)
        return f"{type(self).__name__}({inner})"


def _frozen(value: Any) -> Any:
    """A hashable stand-in that is equal where the values are (900 and 900.0 hash alike)."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def plain(value: Any, *, drop_none: bool = False) -> Any:
    """JSON data for a field's value: records as mappings, tuples as lists, ratios as ``"num/den"``."""
    if isinstance(value, Record):
        return value.to_data(drop_none=drop_none)
    if isinstance(value, (list, tuple)):
        return [plain(v, drop_none=drop_none) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    from fractions import Fraction

    if isinstance(value, Fraction):
        return str(value)
    raise TypeError(f"no JSON form for {type(value).__name__}")


# --- rules ---------------------------------------------------------------------------------


def _bound(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else repr(limit)


def _bounds(
    value: float, loc: Loc, problems: Problems, ge: float | None, gt: float | None, le: float | None
) -> Any:
    if gt is not None and not value > gt:
        return problems.add(loc, f"Input should be greater than {_bound(gt)}")
    if ge is not None and not value >= ge:
        return problems.add(loc, f"Input should be greater than or equal to {_bound(ge)}")
    if le is not None and not value <= le:
        return problems.add(loc, f"Input should be less than or equal to {_bound(le)}")
    return value


FINITE = "must be a finite number (.inf and .nan are not allowed)"
# ASCII digits only (int() and float() also take other scripts' digits); "18.0", "1_000" as pydantic read them
_INT_TEXT = re.compile(r"\s*[+-]?[0-9](?:_?[0-9])*(?:\.0*)?\s*")


def integer(
    *, ge: int | None = None, gt: int | None = None, le: int | None = None, strict: bool = False
) -> Rule:
    """A whole number; not strict: also ``2.0`` and ``"2"``. Never a boolean (``yes`` is no count)."""

    def rule(value: Any, loc: Loc, problems: Problems) -> Any:
        if isinstance(value, bool):
            return problems.add(loc, "Input should be a valid integer")
        if isinstance(value, int):
            n = value
        elif strict:
            return problems.add(loc, "Input should be a valid integer")
        elif isinstance(value, float):
            if not math.isfinite(value):
                return problems.add(loc, FINITE)
            if not value.is_integer():
                return problems.add(
                    loc, "Input should be a valid integer, got a number with a fractional part"
                )
            n = int(value)
        elif isinstance(value, str):
            if not (_INT_TEXT.fullmatch(value) and len(value) < 64):
                return problems.add(
                    loc, "Input should be a valid integer, unable to parse string as an integer"
                )
            n = int(value.strip().split(".")[0])
        else:
            return problems.add(loc, "Input should be a valid integer")
        return _bounds(n, loc, problems, ge, gt, le)

    return rule


def number(*, ge: float | None = None, gt: float | None = None, le: float | None = None) -> Rule:
    """A finite real number, as a float; also a number written as text. Never a boolean."""

    def rule(value: Any, loc: Loc, problems: Problems) -> Any:
        if isinstance(value, bool):
            return problems.add(loc, "Input should be a valid number")
        if isinstance(value, (int, float)):
            x: float = value
        elif isinstance(value, str):
            try:
                if not (len(value) < 64 and value.isascii()):  # float() also reads other scripts' digits
                    raise ValueError(value)
                x = float(value)
            except ValueError:
                return problems.add(loc, "Input should be a valid number, unable to parse string as a number")
        else:
            return problems.add(loc, "Input should be a valid number")
        try:
            x = float(x)  # an int past a float's range (10**400, from code: the loader caps literals)
        except OverflowError:
            x = math.inf
        if not math.isfinite(x):
            return problems.add(loc, FINITE)
        return _bounds(x, loc, problems, ge, gt, le)

    return rule


_TRUE = {"true", "yes", "on", "1", "t", "y"}
_FALSE = {"false", "no", "off", "0", "f", "n"}


def boolean(*, strict: bool = True) -> Rule:
    """true or false; not strict: also 0/1 and yes/no/on/off written as text."""

    def rule(value: Any, loc: Loc, problems: Problems) -> Any:
        if isinstance(value, bool):
            return value
        if not strict:
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE
        short = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return problems.add(loc, f"must be true or false (a YAML boolean, without quotes), not {short}")

    return rule


def text(*, pattern: str | None = None) -> Rule:
    """A string (YAML's !!binary read as UTF-8), matching ``pattern`` if given."""
    compiled = re.compile(pattern) if pattern else None

    def rule(value: Any, loc: Loc, problems: Problems) -> Any:
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                return problems.add(
                    loc, "Input should be a valid string, unable to parse raw data as a unicode string"
                )
        if not isinstance(value, str):
            return problems.add(loc, "Input should be a valid string")
        if compiled is not None and not compiled.fullmatch(value):  # "$" also matches before a final "\n"
            return problems.add(loc, f"String should match pattern '{pattern}'")
        return value

    return rule


def _listed(values: Sequence[Any]) -> str:
    shown = [repr(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


class choice:  # a rule, named like the others
    """One of ``choices`` exactly: text is case-sensitive, 1 is not True (1.0 is 1)."""

    def __init__(self, *choices: Any) -> None:
        self.choices = tuple(choices)

    def __call__(self, value: Any, loc: Loc, problems: Problems) -> Any:
        for v in self.choices:
            same_kind = type(value) is type(v) or (type(v) is int and type(value) is float)
            if same_kind and value == v:
                return v
        return problems.add(loc, f"Input should be {_listed(self.choices)}")


def optional(inner: Rule) -> Rule:
    """None, or what ``inner`` accepts."""

    def rule(value: Any, loc: Loc, problems: Problems) -> Any:
        return None if value is None else inner(value, loc, problems)

    return rule


def list_of(item: Rule, *, min_length: int = 0) -> Rule:
    """A list (YAML sequence) whose every item ``item`` accepts; problems at each item's index."""

    def rule(value: Any, loc: Loc, problems: Problems) -> Any:
        if not isinstance(value, (list, tuple)):
            return problems.add(loc, "Input should be a valid list")
        out = [item(v, (*loc, i), problems) for i, v in enumerate(value)]
        if any(v is BAD for v in out):
            return BAD
        if len(out) < min_length:
            s = "" if min_length == 1 else "s"
            return problems.add(
                loc, f"List should have at least {min_length} item{s} after validation, not {len(out)}"
            )
        return out

    return rule


def tuple_of(item: Rule, size: int) -> Rule:
    """Exactly ``size`` items, each accepted by ``item``, as a tuple."""

    def rule(value: Any, loc: Loc, problems: Problems) -> Any:
        if not isinstance(value, (list, tuple)):
            return problems.add(loc, "Input should be a valid tuple")
        if len(value) != size:
            return problems.add(loc, f"must have exactly {size} items, not {len(value)}")
        out = tuple(item(v, (*loc, i), problems) for i, v in enumerate(value))
        return BAD if any(v is BAD for v in out) else out

    return rule


def converted(convert: Callable[[Any], Any]) -> Rule:
    """``convert(value)``; its ValueError's text is the problem."""

    def rule(value: Any, loc: Loc, problems: Problems) -> Any:
        try:
            return convert(value)
        except ValueError as e:
            return problems.add(loc, str(e))

    return rule


def then(first: Rule, convert: Callable[[Any], Any]) -> Rule:
    """``first``, then ``convert`` on what it accepted (ValueError: the problem)."""

    def rule(value: Any, loc: Loc, problems: Problems) -> Any:
        value = first(value, loc, problems)
        if value is BAD:
            return BAD
        try:
            return convert(value)
        except ValueError as e:
            return problems.add(loc, str(e))

    return rule


def tagged(key: str, kinds: Mapping[str, type[Record]], *, unknown: str) -> Rule:
    """A record whose kind the mapping's ``key`` names; problems inside it sit under that name."""

    def rule(value: Any, loc: Loc, problems: Problems) -> Any:
        if isinstance(value, tuple(kinds.values())):
            return value
        if not isinstance(value, Mapping):
            return problems.add(loc, unknown)
        name = value.get(key)
        if not isinstance(name, str) or name not in kinds:
            return problems.add(loc, unknown)
        return kinds[name].rule(value, (*loc, name), problems)

    return rule
