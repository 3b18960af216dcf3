"""report.html: one self-contained page, checked as text and in a real browser.

The browser tests drive headless Chromium (Debian's ``chromium`` and
``chromium-driver`` packages; ``.ci/run`` installs them) through Selenium,
and skip, saying why, where either is missing.
"""

import os
import re
import shutil

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from skweighted import compare


class Broken(DummyClassifier):
    """A classifier whose every fit fails, for the failed-fits section."""

    def fit(self, X, y, sample_weight=None):
        raise RuntimeError("no luck on this fold")


STRATEGIES = {
    "logreg": make_pipeline(StandardScaler(), LogisticRegression()),
    "logreg_balanced": make_pipeline(
        StandardScaler(), LogisticRegression(class_weight="balanced")
    ),
    "tree": DecisionTreeClassifier(max_depth=3, random_state=0),
    "prior": DummyClassifier(strategy="prior"),
    "broken": Broken(),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    X, y = make_classification(
        n_samples=300, n_features=5, weights=[0.85], random_state=0
    )
    y = np.where(y == 1, "churn", "stay")  # the minority sorts first
    result = compare(X, y, strategies=STRATEGIES, cv=3, random_state=0)
    out = tmp_path_factory.mktemp("report")
    paths = result.save(out, title="test report")
    return result, paths


def test_report_is_one_self_contained_page(report):
    result, paths = report
    html = paths["html"].read_text(encoding="utf-8")
    # nothing to fetch: no external script, style or image
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert html.count('src="data:image/png;base64,') == 2
    rows = re.findall(r"<tr><td data-v=\"([^\"]+)\">", html)
    assert sorted(rows) == sorted(STRATEGIES)
    # the data, the positive class, the ties, the failures and the links
    assert "<code>churn</code>: " in html and "positive class" in html
    assert 'class="best"' in html and 'class="tied"' in html
    assert "no luck on this fold" in html
    for name in ("results.csv", "summary.md"):
        assert f'<a href="{name}">' in html
    assert "fits.jsonl" not in html  # compare() without checkpoint= writes none
    # the confusion matrices hold every test row once, per strategy
    pooled = result.confusion.groupby("strategy")["count"].sum()
    assert (pooled == 300).all() and "broken" not in pooled.index
    assert html.count('<table class="cm">') == len(STRATEGIES) - 1
    assert "wall_time" not in html and "the run took" in html


def _chromium():
    """A headless Chromium driven by Selenium, or a skip saying what is missing."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "no headless browser: install Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver), as .ci/run does"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1300,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=driver)
    )


@pytest.fixture(scope="module")
def page(report):
    _, paths = report
    browser = _chromium()
    try:
        browser.get(paths["html"].resolve().as_uri())
        yield browser
    finally:
        browser.quit()


def _order(page):
    return [
        row.find_element("css selector", "td").text
        for row in page.find_elements("css selector", "#ranked tbody tr")
    ]


def test_page_loads_without_console_errors(page):
    errors = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert page.title == "test report"


def test_table_has_one_row_per_strategy(page):
    assert sorted(_order(page)) == sorted(STRATEGIES)


def test_every_figure_is_visible(page):
    images = page.find_elements("css selector", "figure img")
    assert len(images) == 2
    for image in images:
        assert image.is_displayed()
        loaded = page.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", image
        )
        assert loaded > 300
        assert image.size["width"] > 300 and image.size["height"] > 100


def test_sorting_by_a_column_reorders_the_rows(page):
    heads = page.find_elements("css selector", "#ranked thead th")
    names = [h.text for h in heads]
    before = _order(page)
    heads[0].click()  # by strategy name
    assert _order(page) == sorted(before)
    assert _order(page) != before
    column = names.index("brier")
    heads[column].click()  # best (lowest) first

    def values():
        return [
            float(
                row.find_elements("css selector", "td")[column].get_attribute("data-v")
            )
            for row in page.find_elements("css selector", "#ranked tbody tr")
        ]

    assert values() == sorted(values())
    heads[column].click()  # again: reversed
    assert values() == sorted(values(), reverse=True)
    screenshot = os.environ.get("SKWEIGHTED_REPORT_SCREENSHOT")
    if screenshot:  # docs/compare.md's screenshot is of a real run, not this one
        page.save_screenshot(screenshot)
