"""The Batch tab: the upload handler (no browser) and one real upload in Chromium."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pandas as pd
import pytest
from _browser import CHROMIUM, CHROMIUM_ARGS, need_chromium  # noqa: E402

from assistant.adapters.batch_tab import cleanup_old, score_upload, summary_figure, summary_table
from assistant.batch.texts import load_batch_texts
from assistant.core.fields import FIELDS
from assistant.core.settings import Settings
from assistant.model.synthetic import generate_customers, write_customers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def texts():
    return load_batch_texts().ui


@pytest.fixture()
def upload(tmp_path):
    (tmp_path / "upload").mkdir()
    return write_customers(generate_customers(600, seed=41), tmp_path / "upload" / "my customers.csv")


def test_an_upload_is_scored_and_then_deleted(service, texts, upload, tmp_path):
    root = tmp_path / "work"
    result = score_upload(service, Settings(), texts, upload, root=root)
    assert not upload.exists()                                     # the upload is gone after use
    summary = result.summary
    assert summary is not None and summary.rows_read == 600 and summary.rows_failed > 0
    assert f"{summary.rows_scored:,}" in result.message and f"{summary.rows_failed:,}" in result.message
    assert result.scored_path.parent.parent == root and result.scored_path.name == "my_customers-scored.csv"
    assert result.errors_path is not None and result.errors_path.exists()
    scored = pd.read_csv(result.scored_path)   # comma CSV whatever the upload's delimiter
    assert len(scored) == summary.rows_scored and "segment_key" in scored.columns
    table = summary_table(summary, texts)
    assert table[texts.table_segment].tolist() == [s.segment_name for s in summary.segments]
    assert [f.label for f in FIELDS] == table.columns.tolist()[3:]
    figure = summary_figure(summary, texts)
    assert list(figure.data[0].y) == [s.count for s in summary.segments]


def test_a_small_file_gets_whole_customer_ticks(service, texts, tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("id,age,income,total_spending,web_purchases,store_purchases,web_visits_per_month,recency_days\n"
                    "1,38,71000,1200,5,7,6,14\n2,45,90000,2000,5,9,2,40\n3,29,28000,90,1,2,8,30\n")
    summary = score_upload(service, Settings(), texts, path, root=tmp_path / "work").summary
    axis = summary_figure(summary, texts).layout.yaxis
    assert axis.dtick == 1 and axis.tickformat == ",d"  # no tick at 0.5 customers


def test_a_small_file_says_how_long_it_took_in_milliseconds(service, texts, tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("age,income,total_spending,web_purchases,store_purchases,web_visits_per_month,recency_days\n"
                    "38,71000,1200,5,7,6,14\n45,90000,2000,5,9,2,40\n")
    result = score_upload(service, Settings(), texts, path, root=tmp_path / "work")
    assert result.summary.seconds < 1
    assert re.search(r"rows scored in \d+ ms\.", result.message), result.message
    assert "0.0 s" not in result.message


def test_too_large_uploads_are_refused(service, texts, upload, tmp_path):
    settings = Settings(max_upload_bytes=1000)
    result = score_upload(service, settings, texts, upload, root=tmp_path / "work")
    assert result.summary is None and "the limit here is 0.0 MB" in result.message
    assert not upload.exists() and not (tmp_path / "work").exists()


def test_unreadable_uploads_get_a_message(service, texts, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("age,income\n1,2\n")
    result = score_upload(service, Settings(), texts, bad, root=tmp_path / "work")
    assert result.summary is None
    assert result.message.startswith(texts.failed.split("{")[0]) and "missing column(s) for" in result.message
    assert not bad.exists() and list((tmp_path / "work").iterdir()) == []     # nothing left behind
    assert score_upload(service, Settings(), texts, None).message == texts.no_file


def test_old_request_folders_are_cleaned_up(tmp_path):
    old, new = tmp_path / "req-old", tmp_path / "req-new"
    for d in (old, new):
        d.mkdir()
        (d / "x.csv").write_text("x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert cleanup_old(tmp_path, max_age=3600) == 1
    assert not old.exists() and new.exists()


# ---------------------------------------------------------------------------- in a browser


@pytest.mark.browser
def test_batch_tab_in_a_browser(service, tmp_path):
    need_chromium()
    import gradio as gr
    from playwright.sync_api import expect, sync_playwright

    from assistant.adapters.batch_tab import batch_tab

    texts = load_batch_texts().ui
    frame = generate_customers(400, seed=42)
    path = write_customers(frame, tmp_path / "customers.csv")
    with gr.Blocks() as demo:
        with gr.Tabs():
            with gr.Tab("Other"):
                gr.Markdown("other")
            batch_tab(service, Settings())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(demo.local_url, wait_until="load")
            page.get_by_role("tab", name=texts.tab).click()
            expect(page.locator("#batch-scored")).to_be_hidden()  # no empty download box before a file
            page.locator("#batch-upload input[type=file]").set_input_files(str(path))
            page.locator("#batch-upload").get_by_text("customers.csv").first.wait_for()
            page.locator("#batch-run").click()
            expect(page.locator("#batch-status")).to_contain_text("rows scored", timeout=60_000)
            status = page.locator("#batch-status").inner_text()
            assert "of 400 rows scored" in status and "could not be scored" in status
            expect(page.locator("#batch-table")).to_contain_text(service.segment_name("vip_customers"))
            expect(page.locator("#batch-chart .js-plotly-plot")).to_be_visible()
            expect(page.locator("#batch-scored")).to_contain_text("customers-scored")
            expect(page.locator("#batch-errors")).to_contain_text("customers-errors")
            with page.expect_download() as download:
                page.locator("#batch-scored a").first.click()
            saved = tmp_path / "downloaded.csv"
            download.value.save_as(saved)
            scored = pd.read_csv(saved)
            assert {"ID", "segment_key", "segment_name"} <= set(scored.columns)
            scored_rows = re.search(r"([\d,]+)\** of [\d,]+ rows scored", status)
            assert scored_rows is not None and len(scored) == int(scored_rows.group(1).replace(",", ""))
            screens = Path("/tmp/screens")
            screens.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screens / "batch_tab.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
