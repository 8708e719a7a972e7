"""The Pipelines page in Chromium: upload a CSV, watch steps and chunks, download the report."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import expect

from tests.pipelines.cleanup import remove_pipeline_files  # noqa: F401
from tests.pipelines.data import make_csv

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]

LOG_DIR = Path(__file__).resolve().parents[2] / "var" / "test-logs"
ROWS = 50_000  # five chunks of PIPELINE_CHUNK_ROWS


async def test_upload_watch_steps_and_chunks_download_report(make_user, login, context,
                                                             live_site, tmp_path):
    user = await sync_to_async(make_user)()
    await login(context, user, live_site)
    page = await context.new_page()
    await page.goto(f"{live_site.http_url}/pipelines/")
    await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open")
    await expect(page.locator("#pipeline")).to_be_hidden()

    # Everything the page shows as the pipeline moves, to check it moved live.
    await page.evaluate("""() => {
      window.__shown = [];
      const watch = (id) => new MutationObserver(() => window.__shown.push(
          document.getElementById(id).textContent)).observe(
          document.getElementById(id), { childList: true, characterData: true, subtree: true });
      watch("p-message"); watch("p-percent");
    }""")
    await page.set_input_files("#file", files=[{
        "name": "sales.csv", "mimeType": "text/csv", "buffer": make_csv(ROWS, seed=3)}])
    await page.click("#upload-button")

    section = page.locator("#pipeline")
    await expect(section).to_be_visible()
    await expect(page.locator("#p-name")).to_have_text("sales.csv")
    # Steps appear at once; chunks appear live once split has cut the file.
    await expect(page.locator("#p-steps li")).to_have_count(4)
    await expect(page.locator("#p-chunks .chunk")).to_have_count(5, timeout=30_000)
    await expect(section).to_have_attribute("data-state", "succeeded", timeout=60_000)
    for step in ("validate", "split", "aggregate", "render"):
        await expect(page.locator(f'#p-steps li[data-step="{step}"]')).to_have_attribute(
            "data-state", "succeeded")
    await expect(page.locator('#p-chunks .chunk[data-state="succeeded"]')).to_have_count(5)
    await expect(page.locator("#p-chunks .chunk .pct").first).to_have_text("100%")
    await expect(page.locator("#p-percent")).to_have_text(f"100% ({ROWS} of {ROWS} rows)")
    shown = await page.evaluate("window.__shown")
    # Each step's message shows while it runs (the first may already be past when the
    # upload's answer arrives: the page then starts from the newest state).
    assert {"validating", "splitting"} & set(shown) and "rendering the report" in shown
    partial = [m for m in shown if re.fullmatch(r"\d+% \((\d+) of 50000 rows\)", m)
               and 0 < int(re.findall(r"\((\d+) of", m)[0]) < ROWS]
    assert partial, shown  # rows rolled up from the chunks while they ran
    await expect(page.locator("#p-reports")).to_be_visible()
    await expect(page.locator("#p-summary")).to_contain_text(f"{ROWS} rows")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(LOG_DIR / "pipeline-page.png"), full_page=True)

    async with page.expect_download() as info:
        await page.click("#p-csv")
    download = await info.value
    target = tmp_path / download.suggested_filename
    await download.save_as(target)
    assert download.suggested_filename == "sales-report.csv"
    rows = list(csv.reader(io.StringIO(target.read_text())))
    assert rows[0][:2] == ["region", "rows"]
    assert sum(int(r[1]) for r in rows[1:]) == ROWS
    assert any(r[0].startswith("'=HYPERLINK") for r in rows[1:])  # made inert

    report = await context.new_page()
    href = await page.locator("#p-html").get_attribute("href")
    await report.goto(f"{live_site.http_url}{href}")
    await expect(report.locator("h1")).to_contain_text("sales.csv")
    await expect(report.locator("svg rect")).to_have_count(20)
    await report.screenshot(path=str(LOG_DIR / "pipeline-report.png"), full_page=True)


async def test_cancel_from_the_page(make_user, login, context, live_site):
    user = await sync_to_async(make_user)()
    await login(context, user, live_site)
    page = await context.new_page()
    await page.goto(f"{live_site.http_url}/pipelines/")
    await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open")
    await page.set_input_files("#file", files=[{
        "name": "big.csv", "mimeType": "text/csv", "buffer": make_csv(300_000, seed=5)}])
    await page.click("#upload-button")
    await expect(page.locator('#p-chunks .chunk[data-state="running"]').first).to_be_visible(
        timeout=30_000)
    await page.click("#p-cancel")
    section = page.locator("#pipeline")
    await expect(section).to_have_attribute("data-state", "cancelled")
    await expect(page.locator("#p-state")).to_have_text("cancelled")
    await expect(page.locator("#p-retry")).to_be_visible()
    # Live: the chunks that were queued or running end cancelled on the page too.
    await expect(page.locator('#p-chunks .chunk[data-state="cancelled"]').first).to_be_visible()
    await expect(page.locator('#p-chunks .chunk[data-state="running"]')).to_have_count(0)
    await expect(page.locator("#p-reports")).to_be_hidden()


async def test_recent_lists_a_new_pipeline_live_with_links_to_its_report(make_user, login,
                                                                         context, live_site):
    user = await sync_to_async(make_user)()
    await login(context, user, live_site)
    page = await context.new_page()
    await page.goto(f"{live_site.http_url}/pipelines/")
    await expect(page.locator("#hub-state")).to_have_attribute("data-state", "open")
    await expect(page.locator("#recent")).to_be_hidden()  # nothing yet

    # Another tab uploads; this page is not reloaded.
    other = await context.new_page()
    await other.goto(f"{live_site.http_url}/pipelines/")
    await other.set_input_files("#file", files=[{
        "name": "live.csv", "mimeType": "text/csv", "buffer": make_csv(500, seed=21)}])
    await other.click("#upload-button")

    row = page.locator("#recent-body tr")
    await expect(row).to_have_count(1, timeout=30_000)
    await expect(row.locator("a.show")).to_have_text("live.csv")
    await expect(row).to_have_attribute("data-state", "succeeded", timeout=60_000)
    await expect(row.locator("td").nth(2)).to_have_text("500 rows")
    html = row.locator("a.report-html")
    await expect(html).to_have_attribute(
        "href", re.compile(r"^/api/pipelines/[0-9a-f-]+/report\.html$"))
    await expect(row.locator("a.report-csv")).to_have_attribute(
        "href", re.compile(r"^/api/pipelines/[0-9a-f-]+/report\.csv$"))
    # A link, not JSON: following it opens the report.
    async with context.expect_page() as opened:
        await html.click()
    report = await opened.value
    await expect(report.locator("h1")).to_contain_text("live.csv")
    # The row's name shows that pipeline in the page's detail view.
    await row.locator("a.show").click()
    await expect(page.locator("#p-name")).to_have_text("live.csv")
    await expect(page.locator("#pipeline")).to_have_attribute("data-state", "succeeded")
