"""The published book: it builds with -W, leaks nothing, and works in a real browser."""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


CHAPTER_PAGES = [f for f in toc_files() if f.startswith("book/") and f != "book/intro"]
FIGURE_PAGES = [f for f in CHAPTER_PAGES if f.split("/")[1][:2] not in ("00",)]


pytestmark = pytest.mark.slow


def test_build_has_every_page(built_book: Path) -> None:
    for page in toc_files():
        assert (built_book / f"{page}.html").is_file(), f"{page} was not built"


def test_build_leaks_no_solution(built_book: Path) -> None:
    assert not (built_book / "solutions").exists()
    for path in built_book.rglob("*"):
        if path.is_file() and path.suffix in {".html", ".ipynb", ".txt", ".js", ".md"}:
            text = path.read_text(encoding="utf-8", errors="ignore")
            found = [m for m in LEAK_MARKERS if m in text]
            assert not found, f"{path.relative_to(built_book)} contains {found}"
    assert not list(built_book.rglob("_sources/**/*.md")), "page sources must not be copied"


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_each_page_has_its_framework_notebooks(built_book: Path, page: str) -> None:
    chapter = page.split("/")[1]
    for framework in ("pytorch", "keras"):
        notebook = built_book / "_notebooks" / "book" / chapter / f"{chapter}-{framework}.ipynb"
        assert notebook.is_file(), f"missing {notebook.relative_to(built_book)}"
    html = (built_book / f"{page}.html").read_text()
    assert "download-keras-notebook" in html and "colab.research.google.com/github/" in html


# ---------------------------------------------------------------- in Chromium

@pytest.fixture(scope="module")
def site(built_book: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built_book))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        message = "Debian's chromium and chromium-driver are needed (make system-packages)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1280,1600",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()


def _screenshot(browser, name: str) -> None:
    folder = os.environ.get("DLBOOK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(folder) / f"{name.replace('/', '_')}.png"))


@pytest.mark.browser
@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_page_loads_with_figures_and_no_traceback(browser, site, page: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{site}/{page}.html")
    assert browser.find_element(By.CSS_SELECTOR, "article.bd-article h1").text.strip()
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Traceback" not in body, "a cell output shows a traceback"
    assert not browser.find_elements(By.CSS_SELECTOR, ".output.error, .output.traceback")
    images = browser.find_elements(By.CSS_SELECTOR, ".cell_output img")
    broken = [img.get_attribute("src") for img in images
              if not browser.execute_script("return arguments[0].naturalWidth", img)]
    assert not broken, f"images that do not load: {broken}"
    if page in FIGURE_PAGES:
        assert images, "a chapter page shows no figure"
    _screenshot(browser, page)


@pytest.mark.browser
@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_framework_tabs_switch_together_and_stick(browser, site, page: str) -> None:
    from selenium.webdriver.common.by import By

    def checked_frameworks() -> set[str]:
        return set(browser.execute_script(
            "return [...document.querySelectorAll('.dlbook-framework-tabs')].map(set => {"
            "  const input = set.querySelector(':scope > input:checked');"
            "  return set.querySelector(`label[for=\"${input.id}\"]`).dataset.syncId; })"))

    browser.get(f"{site}/{page}.html")
    tab_sets = browser.find_elements(By.CSS_SELECTOR, ".dlbook-framework-tabs")
    assert len(tab_sets) >= 1, "no PyTorch/Keras tabs on the page"
    for wanted in ("keras", "pytorch"):
        label = tab_sets[0].find_element(By.CSS_SELECTOR, f"label[data-sync-id='{wanted}']")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", label)
        label.click()
        assert checked_frameworks() == {wanted}, f"after choosing {wanted} the tabs show {checked_frameworks()}"
        visible = [c for c in tab_sets[0].find_elements(By.CSS_SELECTOR, ".sd-tab-content") if c.is_displayed()]
        assert len(visible) == 1
        if wanted == "keras":
            _screenshot(browser, f"{page}-keras")
    tab_sets[0].find_element(By.CSS_SELECTOR, "label[data-sync-id='keras']").click()
    browser.refresh()
    assert checked_frameworks() == {"keras"}, "the framework choice was not remembered"
    tab_sets = browser.find_elements(By.CSS_SELECTOR, ".dlbook-framework-tabs")
    tab_sets[0].find_element(By.CSS_SELECTOR, "label[data-sync-id='pytorch']").click()
