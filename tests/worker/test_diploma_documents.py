"""The diploma writer: what the page says in each language, names in any script, and the PDF/UA-1 claim
dropped (never the diploma) when a name has a character no font has."""

from __future__ import annotations

import dataclasses
import io
from datetime import date

import pypdf

from gradeflow.certificates.service.diplomas import Diploma
from gradeflow.certificates.writers.diplomas import diploma, diploma_content
from tests.worker.test_pdf_documents import pdftotext

PLAIN = Diploma(
    certificate_id=1,
    learner="u1",
    name="Ann Archer",
    code="0123456789ABCDEF",
    issued_on=date(2026, 12, 3),
    course="Physics 101",
    assessment=None,
    title="Kursbevis",
    body=None,
    language="nb",
    signatory_name=None,
    signatory_title=None,
    logo=None,
    signature=None,
    digest="x",
)


def _words(content: bytes) -> str:
    return " ".join(pdftotext(content).split())


def test_a_diploma_without_images_or_signatory_says_who_what_and_when() -> None:
    content = diploma(PLAIN)
    words = _words(content)
    assert "Kursbevis Dette kursbeviset tildeles Ann Archer for å ha fullført Physics 101" in words
    assert "Utstedt 3. desember 2026" in words and "Kursbevis nr. 0123456789ABCDEF" in words
    page = pypdf.PdfReader(io.BytesIO(content)).pages[0]
    assert "/XObject" not in page["/Resources"]  # no image, no empty frame for one
    assert diploma_content(PLAIN)["signatory"] is None  # no signature line to sign
    assert b"pdfuaid" in content


def test_names_in_any_script_print_and_an_unprintable_character_drops_only_the_claim() -> None:
    for name in ("محمد علي", "山田 太郎", "देवनागरी नाम"):
        content = diploma(dataclasses.replace(PLAIN, name=name, language="en", title="Certificate"))
        assert b"pdfuaid" in content
        assert "Physics 101" in _words(content)
    emoji = diploma(dataclasses.replace(PLAIN, name="Ann \U0001f600 Archer\x07", language="en"))
    assert "Ann" in _words(emoji) and "Archer" in _words(emoji) and b"pdfuaid" not in emoji
    # Text a client wrote is data, never markup: it prints as written.
    markup = diploma(dataclasses.replace(PLAIN, name='#panic("x") *bold* $x$', language="en"))
    assert '#panic("x") *bold* $x$' in _words(markup)
