"""Diploma PDFs: a certificate's diploma (gradeflow.certificates.service.diplomas.Diploma -> PDF bytes).

Drawn by Typst like the reports (pdf.render: tagged PDF/UA-1, the JSON data never read as markup,
drawn without the PDF/UA-1 claim when a name has a character no font has), laid out by diploma.typ.
Labels come from the reports' catalogue (shared/report_labels, keys `diploma.*`) in the
certification's language, the date in that language's format (Babel).

Typst reads images from files under its root, never from sys.inputs (strings only): each process
keeps the images it has printed in a folder of its own, named by their sha256 (an image's content
never changes under its name), which is the compiler's root; the template is given as bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from functools import lru_cache
from multiprocessing import util
from pathlib import Path
from typing import Any

import typst
from babel.dates import format_date

from gradeflow.certificates.service.certificate_images import EXTENSIONS
from gradeflow.certificates.service.diplomas import Diploma, Image
from gradeflow.core import clock
from gradeflow.reports.writers import pdf
from gradeflow.reports.writers.pdf_fonts import noto_fonts

TEMPLATE = Path(__file__).with_name("diploma.typ")
_local = threading.local()
_folder_lock = threading.Lock()
_folder: Path | None = None


def diploma(d: Diploma) -> bytes:
    """The diploma: logo, title, "awarded to" and the name, what was achieved (the course, or the
    assessment in the course), the certification's text, the date, the code, and the signature over
    the signatory's name and title."""
    return pdf.render(diploma_content(d), _compile)


def diploma_content(d: Diploma) -> dict[str, Any]:
    """What the diploma says, in its language: the document diploma.typ lays out."""
    t = pdf._Text(d.language)
    language, _, rest = d.language.partition("-")
    region = next((part for part in rest.split("-") if len(part) == 2 and part.isalpha()), None)
    achievement = (
        t.format("diploma.assessment", assessment=d.assessment, course=d.course)
        if d.assessment is not None
        else t.format("diploma.course", course=d.course)
    )
    signatory = None
    if d.signatory_name or d.signatory_title or d.signature:
        signatory = {"name": d.signatory_name or None, "title": d.signatory_title or None}
    return {
        "title": t.format("diploma.document_title", title=d.title, name=d.name),
        "lang": language.lower(),
        "region": region and region.upper(),
        "heading": d.title,
        "awarded_to": t["diploma.awarded_to"],
        "name": d.name,
        "achievement": achievement,
        "body": d.body or None,
        "date": t.format("diploma.date", date=format_date(d.issued_on, "long", locale=t.locale)),
        "code": t.format("diploma.code", code=d.code),
        "logo": _picture(d.logo, t["diploma.logo_alt"]),
        "signature": _picture(
            d.signature,
            t.format("diploma.signature_alt", name=d.signatory_name) if d.signatory_name else t["diploma.signature"],
        ),
        "signatory": signatory,
    }


def _picture(image: Image | None, alt: str) -> dict[str, str] | None:
    if image is None:
        return None
    name = f"{image.sha256}.{EXTENSIONS.get(image.content_type, 'png')}"
    path = _images() / name
    if not path.exists():
        partial = path.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}")
        partial.write_bytes(image.data)
        partial.replace(path)  # whole or not at all, whichever thread wrote it first
    return {"path": "/" + name, "alt": alt}


def _images() -> Path:
    """This process's image folder (removed when the process ends)."""
    global _folder
    with _folder_lock:
        if _folder is None or not _folder.is_dir():
            _folder = Path(tempfile.mkdtemp(prefix="gradeflow-diploma-images-"))
            # Run at exit by the main process and by a pool's processes alike (atexit is not, in the latter).
            util.Finalize(None, shutil.rmtree, args=(str(_folder), True), exitpriority=1)
        return _folder


def _compile(data: str, standards: list[typst.PDFStandard]) -> bytes:
    result = _compiler().compile(
        input=_template(),
        format="pdf",
        sys_inputs={"diploma": data},
        pdf_standards=standards,
        timestamp=clock.now().replace(microsecond=0),
    )
    assert isinstance(result, bytes)
    return result


def _compiler() -> typst.Compiler:
    """This thread's compiler: the template as its input, the image folder as its root."""
    compiler: typst.Compiler | None = getattr(_local, "compiler", None)
    if compiler is None or getattr(_local, "root", None) != _images():
        _local.root = root = _images()
        compiler = _local.compiler = typst.Compiler(root=root, font_paths=noto_fonts())
    return compiler


@lru_cache(maxsize=1)
def _template() -> bytes:
    # Given on every compilation: Typst keeps a bytes input for one compilation only.
    return TEMPLATE.read_bytes()
