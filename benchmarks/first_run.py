"""A new user's first run, timed: fresh clone → README command 1 → first item → label → curve point.

1. Clones this repository (its committed HEAD) into an empty folder and puts ``../shared`` beside it
   when there is one (nothing else is needed).
2. Runs README command 1 there as written: ``python3.11 -m venv .venv && . .venv/bin/activate &&
   pip install -r requirements.txt && streamlit run app/streamlit_app.py`` (on a free port).
3. In headless Debian chromium: creates the first admin (with the setup code the server printed), waits for the first item of the demo
   project, checks that the app started its background worker (its log's first line), presses **1**
   and measures the time until the worker's curve point for that label is in the store and on the
   Curves page; then four more labels, one every 2 s.

Writes ``benchmarks/results/first_run.md``. Wall times swing on a shared machine: CPU times of the
install are given beside them.   python benchmarks/first_run.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "first_run.md"
ADMIN, PASSWORD = "admin", "first run password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(command: str, cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the children) of a shell command that must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(["bash", "-c", command], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - start, cpu


def body(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def wait_text(driver, text: str, timeout: float = 180) -> None:
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: text in body(d))


def field(driver, key: str):
    selector = f".st-key-{key} input"
    WebDriverWait(driver, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
    return driver.find_element(By.CSS_SELECTOR, selector)


def curve_points(db: Path, budget: int) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT COUNT(*) FROM curve_points WHERE budget = ?", [budget]).fetchone()[0]


class Colleague:
    """Another annotator on the demo project, committing labels as their Label page would."""

    def __init__(self, db: Path):
        sys.path.insert(0, str(ROOT))
        from fairal.labeling import LabelingSession
        from fairal.store import Store

        self.store = Store(db)
        self.session = LabelingSession(self.store, 1, "colleague", retrain=False)  # loads the project: seconds

    def label(self) -> None:
        self.session.submit(self.session.next_item().item_id, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the clone (printed) instead of removing it")
    parser.add_argument("--reuse", metavar="FOLDER", help="a folder kept by --keep: its clone and .venv are "
                        "used again (the database is removed; no install time is measured)")
    args = parser.parse_args()
    if args.reuse:
        folder = Path(args.reuse)
        clone = folder / "fairal"
        shutil.rmtree(clone / ".fairal", ignore_errors=True)
        install_wall = install_cpu = float("nan")
    else:
        folder = Path(tempfile.mkdtemp(prefix="fairal-first-run-"))
        clone = folder / "fairal"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        if (ROOT.parent / "shared").exists():
            os.symlink(ROOT.parent / "shared", folder / "shared")
        install = "python3.11 -m venv .venv && . .venv/bin/activate && pip install -q -r requirements.txt 2>/dev/null"
        install_wall, install_cpu = timed(install, clone)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRAL_")}
    server = subprocess.Popen(
        ["bash", "-c", f". .venv/bin/activate && exec streamlit run app/streamlit_app.py --server.port {port}"],
        cwd=clone, env=env, stdout=open(folder / "server.log", "w"), stderr=subprocess.STDOUT)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1100",
                 f"--user-data-dir={folder / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
    db = clone / ".fairal" / "fairal.db"
    rows = []
    try:
        start = time.perf_counter()
        for _ in range(240):
            try:
                driver.get(f"http://127.0.0.1:{port}")
                wait_text(driver, "Create the first admin account", timeout=5)
                break
            except Exception:
                time.sleep(0.5)
        server_up = time.perf_counter() - start
        log = Path(f"{db}.worker.log")
        WebDriverWait(driver, 60, poll_frequency=0.1).until(lambda _: log.exists() and "watching" in log.read_text())
        worker_line = log.read_text().strip().splitlines()[0]
        # README: the first admin needs the one-time setup code the app printed in its console.
        code = re.search(r"fairal setup code: ([0-9a-f]{16})", (folder / "server.log").read_text()).group(1)
        field(driver, "login_setup_code").send_keys(code)
        field(driver, "login_new_name").send_keys(ADMIN)
        field(driver, "login_new_password").send_keys(PASSWORD)
        field(driver, "login_new_again").send_keys(PASSWORD)
        start = time.perf_counter()
        driver.find_element(By.CSS_SELECTOR, ".st-key-login_create button").click()
        wait_text(driver, "0 / 400 labels")
        first_item = time.perf_counter() - start
        assert "Models retrain after each label here" not in body(driver), "no worker: labels retrain inline"
        for n in range(1, 6):
            start = time.perf_counter()
            ActionChains(driver).send_keys("1").perform()
            wait_text(driver, f"{n} / 400 labels", timeout=60)
            shown = time.perf_counter() - start
            WebDriverWait(driver, 120, poll_frequency=0.05).until(lambda _, n=n: curve_points(db, n) >= 2)
            point = time.perf_counter() - start
            rows.append((n, shown, point))
            time.sleep(2.0)
        # The Curves page draws the newest point by itself (it asks the store every second): an
        # annotator elsewhere labels (here: the library, as the Label page does), the open page follows.
        driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a[href$="/curves"]').click()
        wait_text(driver, "meets ρ")
        curves_shown, colleague = [], Colleague(db)
        for n in range(6, 9):
            start = time.perf_counter()
            colleague.label()
            WebDriverWait(driver, 120, poll_frequency=0.05).until(
                lambda d, n=n: [c.text for c in d.find_elements(By.CSS_SELECTOR, '[data-testid="stTable"] td')]
                .count(str(n)) == 2)
            curves_shown.append(time.perf_counter() - start)
            time.sleep(2.0)
    except Exception:
        driver.save_screenshot(str(folder / "failed.png"))
        print(f"failed; the page as it was: {folder / 'failed.png'}", file=sys.stderr)
        args.keep = True
        raise
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)
        subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c",
                        f"from fairal.retrainer import stop_worker; stop_worker({str(db)!r})"], cwd=clone)
    lines = [
        "# A new user's first run (fresh clone, README command 1, headless chromium)",
        "",
        f"Command: `python benchmarks/first_run.py` at commit {head}; 2 shared CPU cores, no GPU. Wall times swing "
        "on a shared machine; the install's CPU time is given beside its wall time.",
        "",
        "| step | wall | notes |",
        "|---|---|---|",
        f"| `python3.11 -m venv .venv && pip install -r requirements.txt` | {install_wall:.0f} s | CPU {install_cpu:.0f} s; "
        "from the registry cache of this machine |",
        f"| `streamlit run` → first page (Create the first admin) | {server_up:.1f} s | worker log: `{worker_line}` |",
        f"| create the admin → first item of the demo project | {first_item:.1f} s | the demo project (group-aware random, pool_parity + erm) is "
        "prepared in this step |",
    ]
    for n, shown, point in rows:
        lines.append(f"| label {n} (key **1**) → next item shown / worker's curve points in the store | "
                     f"{shown:.2f} s / {point:.2f} s | both trainers |")
    for n, seconds in enumerate(curves_shown, start=6):
        lines.append(f"| label {n} by another annotator → both trainers' rows on the open Curves page | {seconds:.2f} s | "
                     "worker debounce 1 s, its poll 0.5 s, the page's poll 1 s |")
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.keep:
        print(f"the clone is in {clone}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
