"""The self-contained HTML report: built from the model card alone and from a customer file."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from _browser import CHROMIUM, CHROMIUM_ARGS, need_chromium  # noqa: E402

from assistant.adapters.cli import main
from assistant.adapters.report import build_report, report_texts, run_report
from assistant.core.errors import AssistantError

SECTIONS = ("overview", "distributions", "relationships", "channels", "selection", "pca", "profiles")
# distributions 1 + demographics/spending 4 (income, age, education, children) + channels 3 (mix, deals,
# visits) + model selection 2 + PCA 1 + 3 per segment (product mix, channel mix, campaigns) x 4
CARD_PLOTS = 1 + 4 + 3 + 2 + 1 + 3 * 4
DATA_PLOTS = CARD_PLOTS + 1  # + the income-vs-spending scatter of the file's customers
SEGMENT_NAMES = ("Casual Shoppers", "VIP Customers", "Browsers Without Conversion", "Digital Enthusiasts")


def _args(output: Path, data: Path | None = None) -> argparse.Namespace:
    return argparse.Namespace(output=output, data=data, model_dir=None, knowledge_dir=None)


def _markup(page: str) -> str:
    """The page without the contents of its inline scripts (plotly.js mentions URLs in its code)."""
    return re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", page, flags=re.S | re.I)


def _assert_self_contained(page: str) -> None:
    markup = _markup(page)
    assert "<script src" not in page.lower()
    assert not re.search(r"<script[^>]+src\s*=", page, flags=re.I)
    assert not re.search(r"<link\b", markup, flags=re.I)
    assert not re.search(r"<(img|iframe|source|video|audio|embed|object)\b[^>]*(src|data)\s*=\s*[\"']?https?:",
                         markup, flags=re.I)
    assert "@import" not in markup and not re.search(r"url\(\s*[\"']?https?:", page, flags=re.I)
    assert "http://" not in markup and "https://" not in markup
    # the figures' own scripts load nothing either
    for script in re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S | re.I)[1:]:
        assert "http://" not in script and "https://" not in script
        assert "fetch(" not in script and "XMLHttpRequest" not in script


@pytest.fixture(scope="module")
def card_report(service, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert run_report(_args(out), service=service) == 0
    return out


def test_report_from_the_model_card_alone(card_report, service):
    page = card_report.read_text(encoding="utf-8")
    _assert_self_contained(page)
    assert page.count("<script") == 1 + page.count('class="plotly-graph-div"')  # plotly.js once, then one per plot
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    for name in SEGMENT_NAMES:
        assert name in page
    rt = report_texts(service.knowledge)
    assert rt.source_card in page
    card = service.card
    assert f"{card['data']['rows_in']:,}" in page and card["model_version"] in page
    _, count = build_report(service)
    assert page.count('class="plotly-graph-div"') == count == CARD_PLOTS
    # every segment's data-driven summary and strategy evidence is in the page
    from assistant.insights.summaries import segment_summary, strategy_evidence

    for key in service.knowledge.segments:
        assert segment_summary(service, key) in page
        assert all(line in page for line in strategy_evidence(service, key))
    assert rt.relationships.scatter_title not in page  # the scatter needs the customer file


def test_report_with_a_customer_file(synthetic_file, service, tmp_path, capsys):
    out = tmp_path / "with-data.html"
    assert run_report(_args(out, synthetic_file), service=service) == 0
    printed = capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    _assert_self_contained(page)
    rt = report_texts(service.knowledge)
    assert "customers.csv" in page and rt.relationships.scatter_title in page
    assert "The file&#x27;s customers" in page  # texts are HTML-escaped
    plots = page.count('class="plotly-graph-div"')
    assert plots == DATA_PLOTS and f"{plots} plots" in printed
    # distributions were recomputed from the file: its cleaning counts are shown, not the card's
    from assistant.model.data import load_customers

    data = load_customers(synthetic_file)
    assert f"<td>{rt.overview.rows_kept}</td><td class=\"num\">{data.report.rows_kept:,}</td>" in page
    assert data.report.rows_kept != service.card["data"]["rows_kept"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves nothing behind


def test_report_cli_and_errors(tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", "-o", str(out)]) == 0
    assert out.stat().st_size > 1_000_000  # plotly.js is inlined
    assert main(["report", "-o", str(tmp_path / "missing" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", "-o", str(tmp_path)]) == 2
    assert main(["report", "--data", str(tmp_path / "nope.csv"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nope.csv does not exist" in err and "Traceback" not in err


def test_run_report_keeps_the_previous_file_when_it_fails(tmp_path, service):
    out = tmp_path / "r.html"
    out.write_text("previous")
    with pytest.raises(AssistantError):
        run_report(_args(out, tmp_path / "absent.csv"), service=service)
    assert out.read_text() == "previous"


@pytest.mark.slow
@pytest.mark.browser
def test_report_opens_offline_in_chromium(card_report):
    need_chromium()
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    page_html = card_report.read_text(encoding="utf-8")
    expected_plots = page_html.count('class="plotly-graph-div"')
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests, errors = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(card_report.as_uri(), wait_until="load")
            page.locator(".plotly-graph-div .main-svg").first.wait_for(state="attached")
            page.wait_for_function(
                f"document.querySelectorAll('.plotly-graph-div .plot-container').length === {expected_plots}")
            rendered = page.evaluate(
                "[...document.querySelectorAll('.plotly-graph-div')]"
                ".filter(d => d.querySelector('svg.main-svg') && d.querySelectorAll('.trace, .point, path').length > 0)"
                ".length")
            assert rendered == expected_plots == CARD_PLOTS
            assert [u for u in requests if not u.startswith("file:")] == []
            assert errors == []
            Path("/tmp/screens").mkdir(parents=True, exist_ok=True)
            page.screenshot(path="/tmp/screens/report.png", full_page=True)
        finally:
            browser.close()


def test_report_for_a_file_with_only_the_required_columns(service, tmp_path):
    from assistant.model.data import REQUIRED_COLUMNS
    from assistant.model.synthetic import generate_customers, write_customers

    path = write_customers(generate_customers(600, seed=11)[list(REQUIRED_COLUMNS)], tmp_path / "minimal.csv",
                           delimiter=";")
    out = tmp_path / "minimal.html"
    assert run_report(_args(out, path), service=service) == 0
    page = out.read_text(encoding="utf-8")
    _assert_self_contained(page)
    # no campaign, household or education columns: those plots and rows are left out, the rest is there
    assert "minimal.csv" in page and 'class="plotly-graph-div"' in page
    assert report_texts(service.knowledge).profiles.response not in page
