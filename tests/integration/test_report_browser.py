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
