"""The base of every declared request shape: strict pydantic models, and their errors as InvalidInput naming each field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from core.errors import AigcError, InvalidInput


@dataclass(frozen=True)
class Lookups:
    """What validation needs to know about the caller's own models and files."""

    owns_model: Callable[[str], bool] = lambda _id: False
    # An owned image model's registry info (architecture, image_size, classes), None otherwise.
    image_model: Callable[[str], dict | None] = lambda _id: None
    file: Callable[[str], dict | None] = lambda _id: None
    published: Callable[[], dict[str, str]] = lambda: {}  # models the live workers announce


NO_LOOKUPS = Lookups()


S = TypeVar("S", bound="Shape")


class Shape(BaseModel):
    """A request body or part of one: JSON types only (no "8" for 8, no true for 1), no unknown
    fields, and an explicit null means "the default", as it always has on this API."""

    model_config = ConfigDict(strict=True, extra="forbid", validate_default=False)

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


def refuse(code: str, message: str, relative: bool = False, field: str | None = None) -> PydanticCustomError:
    """An error raised inside a validator; `code` becomes the API error's code. A relative
    message ("must be <= 8") is put after the field's name. field: the field a whole-shape check
    blames (a model validator's error otherwise names the shape)."""
    ctx = {"message": message, "relative": relative, **({"field": field} if field else {})}
    return PydanticCustomError(code, "{message}", ctx)


def reraise(exc: AigcError) -> PydanticCustomError:
    """A platform error from a lookup (catalog, files), carried through pydantic."""
    return refuse(exc.code, exc.message)


def context(info) -> tuple:
    """(settings, lookups) that the caller passed to `check`; (None, NO_LOOKUPS) when a shape is
    built outside a request, and then no setting-bound check applies."""
    ctx = info.context or {}
    return ctx.get("settings"), ctx.get("lookups", NO_LOOKUPS)


def param_of(prefix: str, loc: tuple) -> str | None:
    """("stop", 0) under "input" -> "input.stop[0]": the names the API has always used."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out or None


_PLATFORM_CODES = {"model_not_found", "file_not_found", "invalid_input", "unsupported_parameter"}


def _message(err: dict, param: str | None) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    name = param or "The request body"
    plain = {
        "missing": f"{name} is required",
        "int_type": f"{name} must be an integer",
        "float_type": f"{name} must be a number",
        "finite_number": f"{name} must be a number",
        "string_type": f"{name} must be a string",
        "bool_type": f"{name} must be true or false",
        "string_too_short": f"{name} must not be empty",
        "list_type": f"{name} must be a list",
        "model_type": f"{name} must be an object",
        "dict_type": f"{name} must be an object",
        "model_attributes_type": f"{name} must be an object",
    }
    if kind in plain:
        return plain[kind]
    if kind == "extra_forbidden":
        return f"Unknown field {str(err['loc'][-1])!r}"
    if kind == "string_too_long":
        return f"{name} is longer than {ctx['max_length']} characters"
    if kind == "too_short":
        return f"{name} must have at least {ctx['min_length']} item" + ("s" if ctx["min_length"] != 1 else "")
    if kind == "too_long":
        return f"{name} must have at most {ctx['max_length']} items"
    bounds = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
              "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}
    if kind in bounds:
        op, key = bounds[kind]
        return f"{name} must be {op} {ctx[key]}"
    if "relative" in ctx:  # one of ours, from refuse()
        return f"{name} {ctx['message']}" if ctx["relative"] else ctx["message"]
    return f"{name}: {err['msg']}" if param else err["msg"]


def errors_of(exc: ValidationError, prefix: str = "") -> list[dict]:
    """Every problem, in field order: [{"param", "message", "code"}]."""
    out = []
    for err in exc.errors(include_url=False):
        blamed = (err.get("ctx") or {}).get("field")
        param = param_of(prefix, tuple(err["loc"]) + ((blamed,) if blamed else ()))
        code = err["type"] if err["type"] in _PLATFORM_CODES else "invalid_input"
        out.append({"param": param, "message": _message(err, param), "code": code})
    return out


def invalid(errors: list[dict]) -> InvalidInput:
    """One InvalidInput for them all: the first names `param` (the contract), `errors` lists each."""
    first = errors[0]
    return InvalidInput(first["message"], param=first["param"], code=first["code"], errors=errors)


def parse(shape: type[S], data: Any, prefix: str = "", settings=None, lookups: Lookups = NO_LOOKUPS) -> S:
    """Validate `data` against `shape`; the model, or InvalidInput naming every problem."""
    try:
        return shape.model_validate(data, context={"settings": settings, "lookups": lookups})
    except ValidationError as exc:
        raise invalid(errors_of(exc, prefix)) from None


def check(shape: type[Shape], data: Any, prefix: str = "", settings=None, lookups: Lookups = NO_LOOKUPS) -> dict:
    """Validate `data` against `shape`; the clean input as a plain dict, or InvalidInput."""
    return parse(shape, data, prefix, settings, lookups).model_dump()


def collect(*steps: Callable[[], Any]) -> list:
    """Run validation steps, gathering every InvalidInput rather than stopping at the first."""
    results, errors = [], []
    for step in steps:
        try:
            results.append(step())
        except InvalidInput as exc:
            results.append(None)
            errors.extend(exc.errors or [exc.to_dict()])
    if errors:
        raise invalid(errors)
    return results


def defaults(shape: type[Shape]) -> dict:
    """The declared default of every optional field: what the forms show before a user types."""
    return {name: f.get_default(call_default_factory=True) for name, f in shape.model_fields.items()
            if not f.is_required()}
