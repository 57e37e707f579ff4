"""JSON text for JSONB parameters: fast, and safe for the big integers JSONB hands back
(PostgreSQL writes 1e30 as a 31-digit integer, beyond what orjson encodes)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, default=str)
