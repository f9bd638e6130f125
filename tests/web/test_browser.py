"""The UI in headless Chromium (Debian's chromium + chromium-driver through selenium; no browser download).

Set ``FLUXMUSIC_SCREENSHOT=docs/images/serve.png`` to save the screenshot for the docs (else it goes to a
temporary folder).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():  # noqa: ANN201
    if not (CHROMIUM and DRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing; scripts/setup.sh --dev installs them")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1500")
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


def test_the_ui_generates_plays_and_draws_a_clip(server, browser, tmp_path: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)
    browser.get(server.url + "/")
    prompt = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#prompt textarea"))
    prompt.send_keys("solo piano, a calm piece at 90 BPM")
    browser.find_element(By.CSS_SELECTOR, "#generate").click()

    def audio_source(driver) -> str | None:  # noqa: ANN001
        for element in driver.find_elements(By.CSS_SELECTOR, "#result-audio audio"):
            if element.get_attribute("src"):
                return element.get_attribute("src")
        return None

    source = wait.until(audio_source)
    assert "fluxmusic-" in source and source.endswith(".wav")
    picture = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#spectrogram img"))
    loaded = "return arguments[0].complete && arguments[0].naturalWidth"
    assert wait.until(lambda d: d.execute_script(loaded, picture)) > 100
    settings = browser.find_element(By.CSS_SELECTOR, "#result-settings").text
    assert "text-to-music" in settings and "solo piano" in settings
    history = browser.find_element(By.CSS_SELECTOR, "#history").text
    assert "solo piano" in history

    target = Path(os.environ.get("FLUXMUSIC_SCREENSHOT") or tmp_path / "serve.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(target)) and target.stat().st_size > 10_000


def test_the_ui_asks_for_the_token_and_use_as_input_fills_the_edits(token_server, browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)
    browser.get(token_server.url + "/")
    browser.find_element(By.ID, "token").send_keys(token_server.token)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#prompt textarea")).send_keys(
        "a slow organ chorale"
    )
    browser.find_element(By.CSS_SELECTOR, "#generate").click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#result-audio audio").get_attribute("src"))
    browser.find_element(By.CSS_SELECTOR, "#use-result").click()
    browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Variation')]").click()
    filled = "fluxmusic-"
    assert wait.until(
        lambda d: filled in d.find_element(By.CSS_SELECTOR, "#variation-input").get_attribute("innerHTML")
    )
