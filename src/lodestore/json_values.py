"""The one rule for user values stored as JSON: artifact metadata, run config, summary
and logged metrics.

- A float that is not finite (NaN, Infinity, -Infinity) is stored as null, as W&B does
  for summaries. JSON has no such numbers: stored as ``NaN`` text they made SQLite's
  JSON functions fail on every filter and order of the project, and made ``--json``
  output invalid. A diverged loss is worth keeping as "no value", not worth a crash.
- Nesting is bounded (`MAX_JSON_DEPTH`): a deeper value is refused with a clear error
  rather than reaching Python's recursion limit somewhere later.
- Anything JSON cannot hold (objects, functions, bytes) is refused.

Every write path (the SDK's checks and the catalog itself) calls `json_safe`, so a
value edited in place after its first check still meets the rule when stored.
"""

from __future__ import annotations

import json
import math
from typing import Any

from lodestore.errors import InvalidInputError

MAX_JSON_DEPTH = 100  # far beyond any real config; well inside Python's recursion limit


def json_safe(value: Any, what: str) -> Any:
    """A deep copy of `value` as it will be stored: non-finite floats as None, tuples
    as lists. InvalidInputError if it is nested deeper than MAX_JSON_DEPTH or holds
    something JSON cannot represent."""
    cleaned = _finite(value, what, 0)
    try:
        json.dumps(cleaned, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be JSON-serialisable: {exc}") from None
    return cleaned


def json_dict(value: Any, what: str) -> dict[str, Any]:
    """`json_safe` for a value that must be a dict (metadata, config, summary, a log row)."""
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a dict, got {type(value).__name__}")
    return json_safe(value, what)


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """A JSON object typed by a user (``lode put --metadata``), held to the rule: strict
    JSON (``NaN`` is not JSON), a dict, nested at most MAX_JSON_DEPTH deep."""
    def refuse_constant(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON value (use null)")

    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except ValueError as exc:
        raise InvalidInputError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInputError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep; flatten it") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a JSON object")
    return json_dict(value, what)


def finite_json(value: Any) -> Any:
    """`value` with non-finite floats as None, for printing JSON read back from rows
    written before the rule existed (no depth or type checks: it is output)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def _finite(value: Any, what: str, depth: int) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dict, list, tuple)):
        if depth >= MAX_JSON_DEPTH:
            raise InvalidInputError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep; flatten it")
        if isinstance(value, dict):
            return {k: _finite(v, what, depth + 1) for k, v in value.items()}
        return [_finite(v, what, depth + 1) for v in value]
    return value
