"""The report opens cleanly in headless Chromium: key elements, no console errors, a screenshot.

Needs Debian's chromium and chromium-driver (`make browser` installs them). When they are
missing the test fails, it does not skip: the report's rendering would otherwise go untested.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from advlab.report import write_report
from summaries import example_summary

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PNG = b"\x89PNG\r\n\x1a\n"


def open_chromium(profile: Path) -> webdriver.Chrome:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(f"headless Chromium is needed for the report's browser test, but "
                    f"{', '.join(missing)} is missing: run `make browser` to install Debian's "
                    "chromium and chromium-driver", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", f"--user-data-dir={profile}", "--window-size=1366,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: Selenium Manager never runs, so nothing is downloaded
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(1366, 900)
    return driver


@pytest.mark.parametrize("kind", ["image", "tabular"])
def test_report_in_headless_chromium(kind: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SE_OFFLINE", "true")
    summary = example_summary(kind)
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    page = write_report(run)

    driver = open_chromium(tmp_path / "profile")
    try:
        driver.get(page.resolve().as_uri())
        assert summary["dataset_card"]["name"] in driver.title

        rows = driver.find_elements(By.CSS_SELECTOR, "#headline-table tbody tr")
        assert len(rows) > len(summary["results"])
        assert rows[0].text.startswith("Clean")

        curves = driver.find_element(By.CSS_SELECTOR, "#curves svg")
        assert curves.is_displayed() and curves.size["width"] > 300

        checks = driver.find_elements(By.CSS_SELECTOR, "#checks li.check")
        assert len(checks) == len(summary["checks"])
        failed = driver.find_elements(By.CSS_SELECTOR, "#checks li.check.fail")
        assert len(failed) == sum(not c["passed"] for c in summary["checks"])
        if failed:
            assert "fail" in checks[0].get_attribute("class")

        if kind == "image":
            images = driver.find_elements(By.CSS_SELECTOR, "#gallery svg image")
            assert len(images) == 3 * len(summary["gallery"])
            assert not driver.find_elements(By.ID, "tabular")
        else:
            assert driver.find_element(By.CSS_SELECTOR, "#tabular svg").is_displayed()
            table = driver.find_elements(By.CSS_SELECTOR, "#tabular-table tbody tr")
            assert len(table) == len(summary["tabular"])
            assert not driver.find_elements(By.ID, "gallery")

        # laid out for a laptop: nothing wider than the window
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0

        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe

        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    data = shot.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000


def _open_reproduction(page: Path, names: list[str], profile: Path) -> None:
    """Open a reproduction page; every experiment has its row, in order, and nothing overflows."""
    driver = open_chromium(profile)
    try:
        driver.get(page.resolve().as_uri())
        assert driver.title == "advlab reproduce"
        rows = driver.find_elements(By.CSS_SELECTOR, "#reproduction-table tbody tr")
        assert [r.get_attribute("data-experiment") for r in rows] == names
        for row in rows:
            assert row.is_displayed()
            assert row.find_element(By.CSS_SELECTOR, "td .tag").text  # a verdict or a status
        for name in names:
            assert driver.find_element(By.ID, f"exp-{name}")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
    finally:
        driver.quit()


def test_reproduction_page_in_headless_chromium(tmp_path: Path, monkeypatch) -> None:
    """Every registered experiment's row, for a page of done, skipped and failed records."""
    import reproduce_toy
    from advlab.report.reproduction import write_reproduction
    from advlab.reproduce import EXPERIMENTS, Config
    from advlab.reproduce.runner import run_one

    monkeypatch.setenv("SE_OFFLINE", "true")
    monkeypatch.setitem(EXPERIMENTS, "toy", "reproduce_toy")
    reproduce_toy.FAIL.clear()
    done, skipped = run_one("toy", Config()), run_one("toy", Config(dataset="nsl-kdd"))
    names = [n for n in EXPERIMENTS if n != "toy"]
    records = [{**(done, skipped, {**done, "status": "failed", "error": "x"})[i % 3],
                "name": n, "title": n} for i, n in enumerate(names)]
    for r in records[1:]:  # the plots are drawn once: each figure costs matplotlib time
        r["plots"] = []
    page = write_reproduction(tmp_path, records, {"quick": True, "seconds": 1.0})
    _open_reproduction(page, names, tmp_path / "profile")


@pytest.mark.slow
def test_reproduce_all_quick_page_in_headless_chromium(tmp_path: Path, data_root: Path,
                                                       monkeypatch) -> None:
    """``advlab reproduce --all --quick`` on the real data: no experiment fails, the page opens
    and shows every experiment's row."""
    from advlab.cli import main
    from advlab.reproduce import EXPERIMENTS

    monkeypatch.setenv("SE_OFFLINE", "true")
    out = tmp_path / "out"
    argv = ["reproduce", "--all", "--quick", "--out", str(out), "--quiet",
            "--nsl-kdd", str(data_root / "nsl-kdd"),
            "--kddcup99", str(data_root / "kddcup99" / "kddcup.data_10_percent.gz"),
            "--tuandromd", str(data_root / "tuandromd" / "TUANDROMD.csv")]
    assert main(argv) == 0
    records = [json.loads((out / f"{n}.json").read_text()) for n in EXPERIMENTS]
    assert [r["status"] for r in records] == ["done"] * len(EXPERIMENTS), \
        [(r["name"], r.get("error")) for r in records if r["status"] != "done"]
    _open_reproduction(out / "reproduction.html", list(EXPERIMENTS), tmp_path / "profile")
