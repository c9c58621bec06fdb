"""Make the README's screenshots: one of each page of the app, with realistic content.

Prepares a store (an admin, two annotators, 60 oracle labels on the demo Adult project, a German
project on the 1–4 scale with quiz items and a simulated crowd), starts the app with its
background worker, signs in through the browser and photographs Login, Label, Curves, Setup,
Annotators and Crowd into ``benchmarks/results/*.png``.

Needs Debian's chromium + chromium-driver and selenium.   python benchmarks/screenshots.py
"""

import io
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fairal import auth, clean_set, crowd  # noqa: E402
from fairal.labeling import LabelingSession  # noqa: E402
from fairal.projects import ProjectSettings, create_project, ensure_default_project, open_project  # noqa: E402
from fairal.retrainer import stop_worker  # noqa: E402
from fairal.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
ADMIN, PASSWORD = "maria", "screenshot password"


def prepare(db: Path, n_labels: int) -> None:
    with Store(db) as store:
        demo = ensure_default_project(store)
        admin = auth.create_account(store, ADMIN, PASSWORD, role="admin")
        alice = auth.create_account(store, "alice", PASSWORD, by=admin)
        auth.create_account(store, "bob", PASSWORD, by=admin)
        german = create_project(store, ProjectSettings(
            name="German credit (crowd)", dataset="german", budget=100, scale="confidence4", overlap=3,
            gold_rate=0.2))
        store.add_member(demo, alice.id)
        store.add_member(german, alice.id)
        session = LabelingSession(store, demo, alice)
        data = session.project.dataset
        for _ in range(n_labels):
            item = session.next_item()
            session.submit(item.item_id, int(data.y[data.positions([item.item_id])[0]]))
        # A simulated crowd on 80 pool items and the quiz items, imported as a CSV file.
        project = open_project(store, german)
        items = store.item_ids(german, "pool")[:80] + list(store.gold(german))
        truth = {str(i): int(data_y) for i, data_y in
                 zip(items, project.dataset.y[project.positions(items)])}
        answers = crowd.simulate_crowd(truth, n_workers=12, answers_per_item=5, scale="confidence4",
                                       worker_accuracy=(0.6, 0.9), spammer_share=0.15, seed=0)
        buffer = io.StringIO()
        answers[["item_id", "worker_id", "answer"]].to_csv(buffer, index=False)
        clean_set.import_crowd_csv(store, german, buffer.getvalue().encode(), by=admin, filename="mturk.csv")


def body(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def wait_text(driver, text: str, timeout: float = 90) -> None:
    WebDriverWait(driver, timeout).until(lambda d: text in body(d))


def field(driver, key: str, timeout: float = 60):
    """The input of the widget with this key, once it is on the page."""
    selector = f".st-key-{key} input"
    WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
    return driver.find_element(By.CSS_SELECTOR, selector)


def settle(driver, seconds: float = 1.5) -> None:
    """Wait until Streamlit is idle (no running indicator), then a little more for charts."""
    WebDriverWait(driver, 60).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'))
    time.sleep(seconds)


def choose(driver, key: str, text: str) -> None:
    """Pick the option starting with ``text`` in the selectbox with this key (a combo box)."""
    box = field(driver, key)
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(text)
    time.sleep(0.5)
    box.send_keys(Keys.ENTER)


def go(driver, page: str) -> None:
    """Open a page through the sidebar (a new URL would start a new, signed-out session)."""
    links = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
    next(link for link in links if page in link.text.split()).click()


def main(n_labels: int = 60, port: int = 8611) -> None:
    folder = Path(tempfile.mkdtemp())
    db = (folder / "fairal.db").resolve()
    prepare(db, n_labels)
    env = {**os.environ, "FAIRAL_DB": str(db)}
    env.pop("FAIRAL_WORKER", None)
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "streamlit_app.py"),
                               "--server.headless", "true", "--server.port", str(port),
                               "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--window-size=1300,1250", f"--user-data-dir={folder / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService("/usr/bin/chromedriver"), options=options)
    url = f"http://127.0.0.1:{port}"
    written = []

    def shot(name: str, height: int = 1250) -> None:
        driver.execute_script("document.activeElement && document.activeElement.blur()")
        if height != 1250:
            driver.set_window_size(1300, height)
            settle(driver, 1.5)
        path = OUT / f"{name}.png"
        driver.save_screenshot(str(path))
        written.append(path)
        driver.set_window_size(1300, 1250)

    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        OUT.mkdir(exist_ok=True)
        driver.get(url)
        wait_text(driver, "Sign in to fairal")
        field(driver, "login_name").send_keys(ADMIN)
        settle(driver, 0.5)
        shot("login")
        field(driver, "login_password").send_keys(PASSWORD + Keys.ENTER)
        wait_text(driver, "labels (")
        settle(driver)
        shot("label")
        go(driver, "Curves")
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CLASS_NAME, "js-plotly-plot")) >= 3)
        settle(driver, 2)
        shot("curves", height=1900)
        go(driver, "Setup")
        wait_text(driver, "New project")
        settle(driver)
        shot("setup")
        go(driver, "Annotators")
        wait_text(driver, "Edit an account")
        settle(driver)
        shot("annotators")
        go(driver, "Crowd")
        choose(driver, "crowd_project", "German credit")
        wait_text(driver, "Workers on quiz items")
        settle(driver, 2)
        shot("crowd", height=2900)
        go(driver, "Label")  # the 1-4 scale of the crowd project, the current project now
        wait_text(driver, "How sure are you?")
        settle(driver)
        shot("label_confidence4")
    except Exception:
        driver.save_screenshot(str(folder / "failed.png"))
        (folder / "failed.html").write_text(driver.page_source)
        print(f"failed; the page as it was: {folder / 'failed.png'}", file=sys.stderr)
        raise
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=20)
        stop_worker(db)
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))


if __name__ == "__main__":
    main()
