"""No number typed by hand into a page's prose (it must be glued from code on the page)."""
from __future__ import annotations

from pathlib import Path

import pytest

from dlbook.prose_numbers import literals_in_markdown, literals_in_page, load_allowlist, unused_phrases

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = load_allowlist(ROOT / "tests" / "prose_literals.yml")
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "book").rglob("*.md")
               if "_build" not in p.parts)
# Pages written before this check carry a count of known hand-typed numbers that may only shrink.
DEBT_KEY = "_known_unglued"


def _numbers(markdown: str, phrases=()) -> list[str]:
    return [number for number, _ in literals_in_markdown(markdown, phrases)]


def test_stated_results_are_found() -> None:
    assert _numbers("The output is 3×3 and the layer has 1,216 parameters.") == ["3", "3", "1,216"]
    assert _numbers("LeNet-5 and SHA-256 are names; -5 is a number.") == ["5"]
    assert _numbers("Accuracy reaches 92 % after 0.5 s.") == ["92", "0.5"]


def test_glue_math_code_and_citations_are_not_numbers() -> None:
    markdown = ("The layer has {glue:text}`ch1_params:,` parameters, $n - k + 1$ outputs, "
                "`nn.Conv2d(3, 16, 3)` builds it (Zhang et al., 2018; arXiv:1512.04150).\n"
                "See chapter 3, exercise 2 and Keras 3 with MathJax 3.2.2, VGG16 in float32, "
                "published in 2016.\n1. a numbered item\n(sec-x)=\n")
    assert _numbers(markdown) == []


def test_a_code_quote_of_bare_numbers_is_a_number() -> None:
    assert _numbers("the shape is `(28, 28, 32)`") == ["28", "28", "32"]


def test_allowed_phrases_allow_only_their_own_digits() -> None:
    assert _numbers("a 3×3 kernel gives 26 outputs", ["3×3 kernel"]) == ["26"]


@pytest.mark.parametrize("page", PAGES)
def test_page_states_no_unglued_number(page: str) -> None:
    allowed = dict(ALLOWLIST.get(page) or {})
    debt = allowed.pop(DEBT_KEY, 0)
    stale = unused_phrases(ROOT / page, allowed)
    assert not stale, f"{page}: allowlisted phrases no longer in the page: {stale}"
    found = literals_in_page(ROOT / page, allowed, page)
    listing = "\n".join(map(str, found))
    assert len(found) <= debt, (
        f"{len(found)} number(s) typed into the prose of {page} (known before the check: {debt}). "
        "Glue each from code on the page, write it as a word when it is not a result, or list the "
        f"phrase with a reason in tests/prose_literals.yml:\n{listing}")
