"""The published book: it builds with -W, leaks nothing, and works in a real browser."""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import nbformat
import pytest
import yaml

from dlbook.build import toc_files as dlbook_toc_files
from dlbook.notebooks import output_name
from dlbook.plain_markdown import leftover_myst

ROOT = Path(__file__).resolve().parents[1]
LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + dlbook_toc_files(toc)


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


EXTERNAL_ASSET = re.compile(
    r"<script[^>]+src=[\"'](?:https?:)?//|<link[^>]+href=[\"'](?:https?:)?//[^\"']+[\"'][^>]*stylesheet"
    r"|<link[^>]+stylesheet[^>]+href=[\"'](?:https?:)?//|@import\s+url\([\"']?(?:https?:)?//")


def _html_pages(built_book: Path) -> list[Path]:
    return [p for p in built_book.rglob("*.html") if "_static" not in p.parts]


def test_no_page_loads_a_script_or_style_from_elsewhere(built_book: Path) -> None:
    for path in _html_pages(built_book) + list(built_book.glob("_static/**/*.css")):
        found = EXTERNAL_ASSET.findall(path.read_text(encoding="utf-8", errors="ignore"))
        assert not found, f"{path.relative_to(built_book)} loads {found[:3]} from another site"
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is not served locally"


def test_no_build_machine_path_in_pages_or_downloads(built_book: Path) -> None:
    private = [str(ROOT), os.path.expanduser("~") + "/"]
    for path in built_book.rglob("*"):
        if path.is_file() and path.suffix in {".html", ".ipynb", ".js", ".txt"}:
            text = path.read_text(encoding="utf-8", errors="ignore")
            found = [p for p in private if p in text]
            assert not found, f"{path.relative_to(built_book)} contains the build machine's {found}"


@pytest.mark.parametrize("page", FIGURE_PAGES)
def test_every_figure_has_a_description_for_screen_readers(built_book: Path, page: str) -> None:
    html = (built_book / f"{page}.html").read_text(encoding="utf-8")
    figures = re.findall(r'<img[^>]*src="[^"]*_images/[^"]+"[^>]*>', html)
    assert figures, f"{page} shows no figure"
    for tag in figures:
        alt = re.search(r'alt="([^"]*)"', tag)
        assert alt and alt.group(1).startswith("Figure") and "_images/" not in alt.group(1), (
            f"{page}: a figure without a description: {tag[:200]}")


def _downloads(html: str) -> list[str]:
    return [link for link in re.findall(r'href="([^"]+\.ipynb)"', html) if "://" not in link]


@pytest.mark.parametrize("page", [f for f in toc_files() if f != "book/intro"])
def test_every_page_offers_clean_notebooks_that_exist(built_book: Path, page: str) -> None:
    html = (built_book / f"{page}.html").read_text()
    assert "_sources/" not in html, "a button points at page sources, which are not published"
    links = _downloads(html)
    if page.startswith("book/"):
        expected = {output_name(Path(f"{page}.md"), fw) for fw in ("pytorch", "keras")}
        assert expected <= {Path(link).name for link in links}, f"{page} lacks {expected}"
        assert "colab.research.google.com/github/" in html
    assert links, "the page offers no notebook to download"
    for link in links:
        target = (built_book / page).parent / link
        notebook = nbformat.read(target, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                assert not leftover_myst(cell.source), f"{link}: MyST left in {cell.source[:80]!r}"
        if page.startswith("book/"):
            framework = notebook.metadata.get("dlbook", {}).get("framework")
            other = {"pytorch": "import keras", "keras": "import torch"}.get(framework)
            code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
            assert not other or other not in code, f"{link} holds the other framework's code"
            assert "find_spec(\"dlbook\")" in notebook.cells[0].source, "no install cell first"


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
                 # No network: every host but the local test server fails to resolve.
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
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


MATH_PAGES = [f for f in CHAPTER_PAGES
              if re.search(r"\$[^$\n]+\$", (ROOT / f"{f}.md").read_text(encoding="utf-8"))]


@pytest.mark.browser
@pytest.mark.parametrize("page", MATH_PAGES)
def test_formulas_render_offline_from_local_files_only(browser, site, page: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{site}/{page}.html")
    WebDriverWait(browser, 30).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "mjx-container"), "MathJax rendered no formula")
    WebDriverWait(browser, 30).until(lambda b: b.execute_script(
        "return !document.querySelector('article').innerText.includes('\\\\(')"),
        "raw TeX \\( ... \\) is still visible")
    text = browser.find_element(By.TAG_NAME, "article").text
    assert "\\begin{" not in text, "raw TeX environments are visible"
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    foreign = [r for r in resources if not r.startswith(site)]
    assert not foreign, f"the page requested {foreign[:5]}"


@pytest.mark.browser
def test_values_and_outputs_follow_the_selected_framework(browser, site) -> None:
    """On the CAM page, the numbers a reader sees are the selected framework's own."""
    from selenium.webdriver.common.by import By

    page = "book/03-cam/index"
    browser.get(f"{site}/{page}.html")
    seen = {}
    for framework, label in (("keras", "Keras"), ("pytorch", "PyTorch")):
        tab = browser.find_elements(By.CSS_SELECTOR, f".dlbook-framework-tabs label[data-sync-id='{framework}']")[0]
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", tab)
        tab.click()
        info = browser.find_element(By.CSS_SELECTOR, ".dlbook-run-info").text
        assert info.startswith(f"{label} run:"), info
        other = "pytorch" if framework == "keras" else "keras"
        assert not [e for e in browser.find_elements(By.CSS_SELECTOR, f".dlbook-only-{other}") if e.is_displayed()]
        shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, f".dlbook-only-{framework}")
                 if e.is_displayed()]
        assert shown, f"no {label} value is visible"
        outputs = [e for e in browser.find_elements(By.CSS_SELECTOR, ".dlbook-output-tabs > .sd-tab-content")
                   if e.is_displayed()]
        assert outputs, "no shared cell shows per-framework outputs"
        seen[framework] = shown
        browser.execute_script("window.scrollTo(0, 0)")
        _screenshot(browser, f"{page}-selected-{framework}")
    assert seen["keras"] != seen["pytorch"], "both tabs show the same numbers"
