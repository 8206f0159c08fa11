"""Fixtures for the rendering tests: real WeasyPrint, real chromium (kaleido), pdfplumber."""

from __future__ import annotations

import io
import re

import pdfplumber
import pytest

from reports.render import TemplateOnlyFetcher, render_customer_pdf
from tests.fixtures.sample_report import sample_report


def pdf_text(pdf: bytes) -> str:
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        return "\n".join(page.extract_text() or "" for page in doc.pages)


def squash(s: str) -> str:
    """Drop all whitespace (incl. NBSP): long literal strings may wrap anywhere."""
    return re.sub(r"\s+", "", s.replace("\u00a0", " "))


def flat(s: str) -> str:
    """Collapse whitespace runs (incl. NBSP) to one space."""
    return re.sub(r"\s+", " ", s.replace("\u00a0", " "))


def column_text(pdf: bytes, header: str, next_header: str) -> str:
    """Text of a table column on every page, cropped between two header words.

    Plain extraction interleaves the cells of a row; cropping to the column keeps
    a wrapped subject in one piece, so it can be compared with the view model.
    """
    out = []
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        for page in doc.pages:
            words = page.extract_words()
            left = [w for w in words if w["text"] == header]
            right = [w for w in words if w["text"] == next_header]
            if not left or not right:
                continue
            x0, x1 = left[0]["x0"] - 0.5, right[0]["x0"] - 0.5
            top = left[0]["bottom"]
            out.append(page.crop((x0, top, x1, page.height)).extract_text() or "")
    return "\n".join(out)


class Rendered:
    def __init__(self, vm):
        self.vm = vm
        self.fetcher = TemplateOnlyFetcher()
        self.pdf = render_customer_pdf(vm, fetcher=self.fetcher)
        self.text = pdf_text(self.pdf)
        self.flat = flat(self.text)
        self.squashed = squash(self.text)
        self.subjects = squash(column_text(self.pdf, "SUBJECT", "SEV.")) if vm.incidents else ""


@pytest.fixture(scope="session")
def rendered_en() -> Rendered:
    return Rendered(sample_report("en"))


@pytest.fixture(scope="session")
def rendered_de() -> Rendered:
    return Rendered(sample_report("de"))
