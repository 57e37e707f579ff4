"""The PDF reports' labels, one catalogue per language: `<language>.json` files mapping a label's key to
its text, which may hold `{placeholders}`.

The built-in catalogues sit beside this module (en, fr, nb). A school adds a language, or rewords some
labels of a built-in one, without a code change: it drops its own `<language>.json` files in the
directory named by the `reports.labels_dir` setting (GRADEFLOW_REPORTS__LABELS_DIR); a key there
replaces the built-in text. A language is a BCP 47 tag (`de`, `pt-BR`); a label missing from a
catalogue is taken from its base language (`pt` for `pt-BR`), then from English.

Catalogues are checked when they are loaded (the API and the worker load them at start-up), so a typo in
a school's file stops start-up with an error naming the file and the label, rather than a label that
silently reads in English or a report that fails while it is drawn: every key must be one English has,
every text a string with exactly English's placeholders.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import string
from collections import ChainMap
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from gradeflow.core.settings import get_settings

ENGLISH = "en"
# BCP 47 language tags as file names: a primary language, then subtags (script, region, variant).
_TAG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")


class LabelCatalogue:
    """All languages' labels: the built-in catalogues, then a school's directory on top of them."""

    def __init__(self, catalogues: dict[str, dict[str, str]]) -> None:
        self._catalogues = catalogues

    @classmethod
    def load(cls, extra: Path | None = None) -> LabelCatalogue:
        builtin = importlib.resources.files(__package__)
        files = [(f.name, f.read_text(encoding="utf-8")) for f in builtin.iterdir() if f.name.endswith(".json")]
        english = dict(_parse(f"{ENGLISH}.json", dict(files)[f"{ENGLISH}.json"], None))
        catalogues: dict[str, dict[str, str]] = {}
        if extra is not None:
            if not extra.is_dir():
                raise ValueError(f"GRADEFLOW_REPORTS__LABELS_DIR: {extra} is not a directory")
            files += [(p.name, p.read_text(encoding="utf-8")) for p in extra.iterdir() if p.suffix == ".json"]
        # Built-in files first: a school's file for the same language overrides their keys.
        for name, content in files:
            language = name.removesuffix(".json")
            if not _TAG.fullmatch(language):
                raise ValueError(f"label catalogue {name}: the file name must be a language tag, like fr.json")
            catalogues.setdefault(language, {}).update(_parse(name, content, english))
        return cls(catalogues)

    def languages(self) -> list[str]:
        return sorted(self._catalogues)

    def labels(self, language: str) -> Mapping[str, str]:
        """The labels of `language`, each missing one taken from its base language, then English.

        Requests are checked against `languages()` when they are made; a language a school has since
        removed gives English labels rather than a failed report."""
        chain = []
        parts = language.split("-")
        for n in range(len(parts), 0, -1):
            tag = "-".join(parts[:n])
            if tag in self._catalogues and tag != ENGLISH:
                chain.append(self._catalogues[tag])
        # Read-only: the catalogues are shared by every report this process draws.
        return MappingProxyType(ChainMap(*chain, self._catalogues[ENGLISH]))


def _parse(name: str, content: str, english: Mapping[str, str] | None) -> dict[str, str]:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as e:
        raise ValueError(f"label catalogue {name}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"label catalogue {name}: must be a JSON object of label keys to texts")
    for key, text in data.items():
        if not isinstance(text, str):
            raise ValueError(f"label catalogue {name}: {key!r} must be a string")
        if english is None:
            _placeholders(name, key, text)
        elif key not in english:
            raise ValueError(f"label catalogue {name}: unknown label {key!r} (the keys are those of en.json)")
        elif _placeholders(name, key, text) != _placeholders(name, key, english[key]):
            raise ValueError(
                f"label catalogue {name}: {key!r} must use the placeholders"
                f" {sorted(_placeholders(name, key, english[key]))}, like en.json"
            )
    return data


def _placeholders(name: str, key: str, text: str) -> set[str]:
    try:
        return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as e:
        raise ValueError(f"label catalogue {name}: {key!r} is not a valid template ({e})") from None


@lru_cache(maxsize=1)
def catalogue() -> LabelCatalogue:
    """The catalogue of this process: built-in labels and the school's directory, loaded once."""
    return LabelCatalogue.load(get_settings().reports.labels_dir)


def languages() -> list[str]:
    """The languages reports can be asked in (BCP 47 tags)."""
    return catalogue().languages()


def labels(language: str) -> Mapping[str, str]:
    """The labels of `language`; see LabelCatalogue.labels."""
    return catalogue().labels(language)
