"""Time zones a requester may name (IANA names, e.g. Europe/Oslo), checked the same way in query
parameters and in report parameters.

Names come from the IANA database Python knows (the system's, else the `tzdata` package); the
database server converts with its own copy of the same database, which knows every one of them
(PostgreSQL lists its names in pg_timezone_names).
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

UTC = "UTC"
# In the database's directory but not places: "localtime" is whatever the host says, "Factory" a placeholder.
_NOT_PLACES = frozenset({"localtime", "Factory"})


@functools.cache
def _names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() - _NOT_PLACES)


def known_zone(name: str) -> str:
    if name not in _names():
        raise ValueError(f"Unknown time zone {name!r}: give an IANA name such as UTC or Europe/Oslo.")
    return name


TimeZone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(known_zone),
    Field(description="An IANA time zone name (e.g. Europe/Oslo) that times are shown in."),
]


def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(known_zone(name))
