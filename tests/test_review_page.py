"""``imgx review``: the page of a real run (real photos, one item failed, two flagged), opened in a real headless
Chromium through Selenium: it loads without console errors, its filters and search show the rows the ledger says,
and the SKUs ticked as rejected download as a CSV that ``imgx run --only`` runs, exactly those SKUs."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import os
import re
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from _support import basic_recipe, write_recipe
from imgx.cli import app
from imgx.ledger import read_ledger
from imgx.ledger_report import current_state
from imgx.review import rule_id, write_review

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

FAILED_SKU = "food/coffee"
FLAGGED_SKUS = ("misc/astronaut", "misc/rocket")

# A stage that flags and fails chosen SKUs the way check.marketplace does: rule ids as flags, values as metrics.
MARK_PLUGIN = '''
    """Test stage: flag or fail chosen SKUs, as a rule check would."""
    from pydantic import Field

    import imgx


    class MarkParams(imgx.StageParams):
        flag: list[str] = Field(default=[], description="SKUs flagged product.fill and warning:aspect")
        fail: list[str] = Field(default=[], description="SKUs that fail")


    class Mark(imgx.Stage):
        name = "test.mark"
        Params = MarkParams
        summary = "Flag or fail chosen SKUs."

        def process(self, item):
            if item.sku in self.params.fail:
                raise ValueError(f"{item.sku} breaks product.fill: got 0.31, expected >= 0.85")
            if item.sku in self.params.flag:
                height, width = item.image.shape[:2]
                return item.noted("product.fill", "warning:aspect", **{"product.fill": 0.52, "aspect": width / height})
            return item


    @imgx.hookimpl
    def imgx_stages():
        return [Mark]
'''


def imgx(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@dataclasses.dataclass(frozen=True)
class Reviewed:
    folder: Path
    recipe: Path
    plugins: Path
    out: Path
    page: Path
    failed: int
    flagged: int
    rows: int
    rules: list[str]


@pytest.fixture(scope="module")
def reviewed(photo_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Reviewed:
    """A real run of 8 real photos (outputs ``square`` and ``check``) and its review page, written by the CLI."""
    folder = tmp_path_factory.mktemp("review")
    plugins = folder / "plugins"
    plugins.mkdir()
    (plugins / "review_marks.py").write_text(textwrap.dedent(MARK_PLUGIN), encoding="utf-8")
    recipe = write_recipe(
        folder,
        {
            "version": 1,
            "name": "review",
            "input": {"path": str(photo_catalog), "pattern": "**/*.jpg"},
            "output": {"dir": str(folder / "out"), "format": "jpeg"},
            "execution": {"workers": 1, "batch_size": 4, "max_failures": 2},
            "stages": [
                {"id": "square", "uses": "geometry.fit", "with": {"size": 128}},
                {"id": "check", "uses": "test.mark", "needs": ["square"], "with": {"flag": list(FLAGGED_SKUS)}},
            ],
            "outputs": ["square", "check"],
        },
    )
    result = imgx("run", recipe, "--plugins-dir", plugins, "--set", f"stages.check.with.fail=[{FAILED_SKU}]")
    assert result.exit_code == 0, result.output
    state = current_state(folder / "out")
    flagged = pc.and_(pc.equal(state["status"], "ok"), pc.not_equal(pc.fill_null(state["flags"], ""), ""))
    failed = int(pc.sum(pc.not_equal(state["status"], "ok")).as_py())
    flags = {f for cell in state["flags"].to_pylist() for f in (cell or "").split(",") if f}
    assert (state.num_rows, failed, int(pc.sum(flagged).as_py())) == (16, 1, 2)  # what the recipe asks for
    page = folder / "review.html"
    result = imgx("review", folder / "out", "-o", page)
    assert result.exit_code == 0, result.output
    assert "review page of 16 row(s) of 16 (1 failed, 2 flagged, 13 ok;" in result.stdout
    return Reviewed(folder, recipe, plugins, folder / "out", page, failed, 2, 16, sorted({rule_id(f) for f in flags}))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Debian's Chromium driven by its chromedriver (never a download by selenium-manager), downloading into a temp
    folder (``browser.downloads``). Skipped where they are not installed, failed under CI (which installs them)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        message = f"{', '.join(missing)} missing: apt-get install chromium chromium-driver (and imgx[dev])"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must install them (.ci/run does)")
        pytest.skip(message)
    downloads = tmp_path_factory.mktemp("downloads")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def shown(driver) -> list[tuple[str, str, str]]:
    """``(sku, status, output)`` of each row the page displays now."""
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#rows tbody tr")
    found = [r for r in rows if r.is_displayed()]
    listed = [
        (r.get_attribute("data-sku"), r.get_attribute("data-status"), r.get_attribute("data-output")) for r in found
    ]
    assert driver.find_element(By.ID, "shown").text == str(len(listed))  # the counter agrees
    return listed


def choose(driver, control: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, control)).select_by_value(value)


def test_the_page_filters_marks_and_downloads_what_imgx_run_only_takes(reviewed: Reviewed, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(reviewed.page.as_uri())
    assert driver.title.startswith("imgx review")
    assert len(shown(driver)) == reviewed.rows
    rule_options = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#rule option")]
    assert rule_options == ["", *reviewed.rules] == ["", "product.fill", "warning:aspect"]

    choose(driver, "status", "failed")
    assert shown(driver) == [(FAILED_SKU, "failed", "check")] and reviewed.failed == 1
    choose(driver, "status", "flagged")
    assert sorted(shown(driver)) == [(sku, "flagged", "check") for sku in FLAGGED_SKUS]
    choose(driver, "status", "ok")
    assert len(shown(driver)) == reviewed.rows - reviewed.failed - reviewed.flagged
    choose(driver, "status", "all")
    choose(driver, "rule", "warning:aspect")
    assert sorted(s for s, _, _ in shown(driver)) == list(FLAGGED_SKUS)
    choose(driver, "rule", "")
    choose(driver, "output", "square")
    assert {o for _, _, o in shown(driver)} == {"square"} and len(shown(driver)) == 8
    choose(driver, "output", "")

    search = driver.find_element(By.ID, "search")
    search.send_keys("HOPPER")  # a substring, any case
    assert {s for s, _, _ in shown(driver)} == {"misc/grace_hopper"} and len(shown(driver)) == 2
    search.send_keys(Keys.CONTROL, "a")
    search.send_keys(Keys.BACKSPACE)
    assert len(shown(driver)) == reviewed.rows

    download = driver.find_element(By.ID, "download")
    assert not download.is_enabled()  # nothing marked yet

    def tick(sku: str, output: str) -> None:
        box = driver.find_element(By.CSS_SELECTOR, f'tr[data-sku="{sku}"][data-output="{output}"] input.reject')
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        box.click()

    tick("food/chelsea", "square")
    tick("misc/flower", "check")
    tick("misc/flower", "check")  # unticked again
    choose(driver, "status", "flagged")
    tick("misc/astronaut", "check")
    assert driver.find_element(By.ID, "marked").text == "2"
    other = driver.find_element(By.CSS_SELECTOR, 'tr[data-sku="food/chelsea"][data-output="check"] input.reject')
    assert other.is_selected()  # rejecting a SKU marks each of its outputs
    driver.execute_script("window.scrollTo(0, 0)")
    download.click()
    csv_path = driver.downloads / "rejected.csv"
    deadline = time.monotonic() + 15
    while not csv_path.exists() or list(driver.downloads.glob("*.crdownload")):
        assert time.monotonic() < deadline, f"no download in {driver.downloads}: {list(driver.downloads.iterdir())}"
        time.sleep(0.05)
    with csv_path.open(newline="", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == [{"sku": "food/chelsea"}, {"sku": "misc/astronaut"}]

    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []

    rerun = reviewed.folder / "rerun"
    result = imgx(
        "run", reviewed.recipe, "--only", csv_path, "--plugins-dir", reviewed.plugins,
        "--set", f"output.dir={rerun}", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ledger = read_ledger(rerun, columns=["sku", "output", "status"])
    assert Counter(ledger["sku"].to_pylist()) == {"food/chelsea": 2, "misc/astronaut": 2}
    assert set(ledger["status"].to_pylist()) == {"ok"}
    assert sorted(p.relative_to(rerun).as_posix() for p in rerun.rglob("*.jpg")) == [
        "food/chelsea/check.jpg",
        "food/chelsea/square.jpg",
        "misc/astronaut/check.jpg",
        "misc/astronaut/square.jpg",
    ]


def _thumb(uri: str) -> Image.Image:
    assert uri.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_the_page_is_one_self_contained_file_with_real_thumbnails(reviewed: Reviewed) -> None:
    page = reviewed.page.read_text(encoding="utf-8")
    assert not re.search(r'\b(?:src|href)\s*=\s*"(?!data:)', page)  # nothing fetched: no server, no CDN
    assert "<link" not in page and "<script src" not in page and "url(http" not in page
    assert page.count("<tr class=") == reviewed.rows
    # the written output, downscaled: the same picture as the file
    row = re.search(r'<tr class="ok" data-sku="food/chelsea" data-status="ok" data-output="square".*?</tr>', page)
    assert row is not None
    output = _thumb(re.search(r'<img class="thumb"[^>]* src="([^"]+)"', row.group(0)).group(1))
    with Image.open(reviewed.out / "food/chelsea/square.jpg") as written:
        expected = np.asarray(written.convert("RGB").resize(output.size, Image.Resampling.LANCZOS), dtype=float)
    assert max(output.size) <= 200 and np.abs(np.asarray(output.convert("RGB"), dtype=float) - expected).mean() < 6
    # the failed row shows its source (a CSS class holding the data URI) and no output
    failed = re.search(rf'<tr class="failed" data-sku="{FAILED_SKU}".*?</tr>', page).group(0)
    assert "breaks product.fill: got 0.31" in failed and "<img" not in failed
    source_class = re.search(r'<span class="thumb (s\d+)"', failed).group(1)
    source = _thumb(re.search(rf"\.{source_class}\{{background-image:url\(([^)]+)\)\}}", page).group(1))
    assert max(source.size) == 160  # the catalog's photos have a long side of 160 px, under the 200 px cap


def test_limit_puts_failed_then_flagged_first_and_says_how_many_were_left_out(reviewed: Reviewed) -> None:
    page = reviewed.folder / "limited.html"
    result = imgx("review", reviewed.out, "-o", page, "--limit", "4")
    assert result.exit_code == 0, result.output
    assert "review page of 4 row(s) of 16 (1 failed, 2 flagged, 13 ok; failed and flagged first; 12 left out" in (
        result.stdout
    )
    text = page.read_text(encoding="utf-8")
    assert re.findall(r'data-status="(\w+)"', text) == ["failed", "flagged", "flagged", "ok"]
    assert '<strong id="left-out">12</strong> rows left out' in text


def test_an_audit_ledger_without_outputs_shows_the_sources_alone(reviewed: Reviewed) -> None:
    audit = reviewed.folder / "audit"
    result = imgx(
        "run", reviewed.recipe, "--plugins-dir", reviewed.plugins, "--no-progress",
        "--set", "output.write=false", "--set", f"output.dir={audit}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not [p for p in audit.rglob("*") if p.is_file() and "_imgx" not in p.parts]  # no output was written
    summary = write_review(audit, audit / "review.html", limit=10)
    assert (summary.rows, summary.total, summary.left_out, summary.flagged, summary.failed) == (10, 16, 6, 2, 0)
    text = (audit / "review.html").read_text(encoding="utf-8")
    assert "<img" not in text and text.count("no output written") == 10
    assert len(re.findall(r'<span class="thumb s\d+"', text)) == 10


def test_a_folder_without_a_ledger_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    result = imgx("review", tmp_path, "-o", tmp_path / "review.html")
    assert result.exit_code == 2
    assert f"no ledger in {tmp_path}" in result.stderr and not (tmp_path / "review.html").exists()


def test_a_run_on_object_storage_gets_its_page_there_too(
    photo_catalog: Path, tmp_path: Path, s3_bucket: str, s3_server
) -> None:
    recipe = basic_recipe(photo_catalog, tmp_path / "unused")
    recipe["output"]["dir"] = f"s3://{s3_bucket}/out"
    path = write_recipe(tmp_path, recipe)
    assert imgx("run", path, "--set", "input.limit=3", "--no-progress").exit_code == 0
    result = imgx("review", f"s3://{s3_bucket}/out", "-o", f"s3://{s3_bucket}/review.html")
    assert result.exit_code == 0, result.output
    assert "review page of 6 row(s) of 6 (0 failed, 0 flagged, 6 ok;" in result.stdout
    page = s3_server.client().get_object(Bucket=s3_bucket, Key="review.html")["Body"].read().decode("utf-8")
    assert page.count('<img class="thumb"') == 6 and len(re.findall(r"\.s\d+\{background-image:url\(data:", page)) == 3
