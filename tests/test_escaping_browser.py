"""The escaping checked in a real browser (headless Debian chromium): Streamlit's own renderer draws
the pages of tests/test_escaping.py's hostile store, and no element links to or loads from the
hostile host. Skipped without chromium, chromedriver or selenium (like tests/test_browser.py).
"""

import os

import pytest

pytestmark = pytest.mark.browser

from selenium.webdriver.common.by import By  # noqa: E402
from test_escaping import ADMIN, PASSWORD, hostile_db  # noqa: E402, F401 (hostile_db: a fixture)

from test_browser import browser, go, idle, running_app, sign_in  # noqa: E402, F401 (browser: a fixture)

EVIL = "evil.example"


@pytest.fixture
def hostile_server(hostile_db, tmp_path):  # noqa: F811
    env = {**os.environ, "FAIRAL_DB": str(hostile_db), "FAIRAL_WORKER": "off"}
    with running_app(env, tmp_path / "console.txt") as url:
        yield url


def hostile_elements(driver) -> list[str]:
    """Links to, images from and frames of the hostile host in the page, and where they sit."""
    return driver.execute_script("""
        const found = [];
        for (const e of document.querySelectorAll('a[href], img[src], iframe[src], [style*="url("]')) {
            const target = e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('style');
            if (target.includes(arguments[0]) || target.startsWith('javascript:'))
                found.push(e.tagName + ' ' + target + ' in ' + (e.closest('h1') ? 'h1' :
                           (e.closest('[data-testid="stMarkdownContainer"]') || e.parentElement).innerText.slice(0, 30)));
        }
        return found;""", EVIL)


def test_no_page_links_to_or_loads_from_a_hostile_name(hostile_server, browser):  # noqa: F811
    browser.get(hostile_server)
    sign_in(browser, ADMIN, PASSWORD)
    seen = {}
    for page in ("Label", "Setup", "Annotators", "Curves"):
        go(browser, page)
        idle(browser, 1.5)
        text = browser.find_element(By.TAG_NAME, "body").text.replace("\u2060", "")
        seen[page] = hostile_elements(browser)
        if page == "Label":  # the hostile values are there, as typed
            assert "[no](javascript:alert(1))" in text and "www.yes.example" in text
    leaks = seen
    assert leaks == {"Label": [], "Setup": [], "Annotators": [], "Curves": []}, leaks
