"""The fonts the PDF reports print with: Noto faces from the system's packages (Debian
`fonts-noto-core` and `fonts-noto-cjk`, installed by `make` and by deploy/Dockerfile), found through
fontconfig at run time and never downloaded.

Each script of a learner's name needs a face that covers it: Noto Sans (Latin, Greek, Cyrillic),
Noto Sans Arabic, Devanagari and Thai, and Noto Sans CJK (Chinese, Japanese, Korean). The directories
holding them are handed to Typst, so the other Noto faces beside them serve as fallbacks for rarer scripts.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import typst

# The faces the report template names (pdf_reports.typ), each with the package that provides it.
FAMILIES = {
    "Noto Sans": "fonts-noto-core",
    "Noto Sans Arabic": "fonts-noto-core",
    "Noto Sans Devanagari": "fonts-noto-core",
    "Noto Sans Thai": "fonts-noto-core",
    "Noto Sans CJK SC": "fonts-noto-cjk",
}
# Where Debian's packages put them, for a system without fontconfig's `fc-match`.
_DEBIAN_DIRS = (Path("/usr/share/fonts/truetype/noto"), Path("/usr/share/fonts/opentype/noto"))


class MissingFonts(RuntimeError):
    """The system lacks a face the reports need: reports would print empty boxes, so none is drawn."""


def _fontconfig_dir(family: str) -> Path | None:
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    # fc-match always answers with its best substitute: it is only this family if the name says so.
    found = subprocess.run(  # noqa: S603 - a fixed program and a family name of ours
        [fc_match, "--format=%{family}\n%{file}", family], capture_output=True, text=True, check=False
    ).stdout.split("\n", 1)
    if len(found) == 2 and family in found[0].split(","):
        return Path(found[1]).parent
    return None


@lru_cache(maxsize=1)
def noto_fonts() -> typst.Fonts:
    """The font book of this process (scanned once, shared by its compilers)."""
    dirs = {d for d in map(_fontconfig_dir, FAMILIES) if d is not None}
    dirs |= {d for d in _DEBIAN_DIRS if d.is_dir()}
    fonts = typst.Fonts(include_system_fonts=False, font_paths=sorted(str(d) for d in dirs))
    missing = sorted(set(FAMILIES) - set(fonts.families()))
    if missing:
        packages = " ".join(sorted({FAMILIES[f] for f in missing}))
        raise MissingFonts(f"fonts {', '.join(missing)} not found: install the packages {packages} (make fonts)")
    return fonts
