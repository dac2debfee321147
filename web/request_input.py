"""Reading what a request sends (its JSON body, integer query arguments, numeric form fields), each
wrong value a 400 that names it; shared by the API and the page blueprints."""

from __future__ import annotations

import json
import re

from flask import request

from core.errors import InvalidInput, TooLarge, UnsupportedMediaType
from core.text_checks import unencodable_message, unencodable_path


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def json_body():
    """The parsed JSON body, or a 4xx that says what is wrong with it: 415 for another content type,
    413 for a body over the limit (chunked ones too), 400 for the rest."""
    if not _is_json(request.mimetype):
        sent = request.mimetype or "no Content-Type"
        raise UnsupportedMediaType(f"Send the body as JSON with Content-Type: application/json (got {sent})",
                                   param="Content-Type")
    raw = request.get_data(cache=False)
    limit = request.max_content_length
    # A chunked body has no declared length: the server's stream stops at the limit without a
    # word, so a body that fills it is taken as longer, never parsed cut short.
    if request.content_length is None and limit is not None and len(raw) >= limit:
        raise TooLarge(f"The request body is larger than {limit} bytes")
    if not raw:
        raise InvalidInput("The request body is empty; send a JSON object", code="invalid_json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"The request body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:
        raise InvalidInput("The request body is nested too deeply", code="invalid_json") from None
    bad = unencodable_path(body)
    if bad is not None:
        raise InvalidInput(unencodable_message(bad), param=None if bad == "body" else bad)
    return body


def int_arg(name: str, default: int, lo: int, hi: int) -> int:
    """The query argument `name` as an integer in [lo, hi] (`default` when absent), else a 400 naming it."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,12}", raw) or not lo <= int(raw) <= hi:
        raise InvalidInput(f"{name} must be an integer from {lo} to {hi}", param=name)
    return int(raw)


def form_numbers(form, casts: dict) -> dict:
    """Form strings to typed input (blank fields left out); a value that is not a number is
    reported on its field."""
    out = {}
    for name, cast in casts.items():
        raw = form.get(name, "").strip()
        if raw:
            try:
                out[name] = cast(raw)
            except ValueError:
                raise InvalidInput(f"input.{name} must be a number", param=f"input.{name}") from None
    return out
