"""Reading numbers and JSON from requests without trusting their size.

Python converts digits of any length: int() of 5,000 digits raises ValueError, float() of a
huge int raises OverflowError, and both cost time that grows with the input. Every number a view
takes from a request is checked for length and form before it is converted, so hostile input gets
a 400 and never a 500.
"""

import json
import math

from django.http import HttpRequest, JsonResponse

# Enough for any 64-bit integer or float written out in full; far below Python's limits.
MAX_NUMBER_CHARACTERS = 32


class BadInput(ValueError):
    """A request value that is refused; the message says why, field names it if there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def response(self) -> JsonResponse:
        body = {"error": str(self)}
        if self.field:
            body["field"] = self.field
        return JsonResponse(body, status=400)


def _bounded(convert):
    def parse(text: str):
        if len(text) > MAX_NUMBER_CHARACTERS:
            raise BadInput(f"Numbers may have at most {MAX_NUMBER_CHARACTERS} characters.")
        return convert(text)

    return parse


def _no_constants(name: str):
    raise BadInput(f"{name} is not a number.")


def is_json(request: HttpRequest) -> bool:
    """Whether the body is declared as JSON. Browsers send other types cross-site without a
    preflight, so an API that insists on JSON cannot be driven by a form on someone else's page."""
    return request.content_type == "application/json"


def json_object(body: bytes) -> dict:
    """The body as a JSON object, with every number's length bounded before it is converted."""
    try:
        payload = json.loads(
            body,
            parse_int=_bounded(int),
            parse_float=_bounded(float),
            parse_constant=_no_constants,
        )
    except BadInput:
        raise
    # RecursionError: a hostile body nested thousands of levels deep.
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise BadInput("The body must be a JSON object.") from error
    if not isinstance(payload, dict):
        raise BadInput("The body must be a JSON object.")
    return payload


def number_in_range(value: object, field: str, low: float, high: float) -> float:
    """A JSON number (not a bool) from low to high, inclusive."""
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise BadInput(f"{field} must be a number from {low} to {high}.", field)
    return value


def whole_number_in_range(raw: str, field: str, low: int, high: int) -> int:
    """A query parameter of ASCII digits only (no sign, no spaces, no other scripts' digits)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))) or not (
        low <= int(raw) <= high
    ):
        raise BadInput(f"{field} must be a whole number from {low} to {high}.", field)
    return int(raw)
