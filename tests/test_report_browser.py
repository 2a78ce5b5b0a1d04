"""The report in a real browser: headless Chromium driven by Playwright.

One report is made by a real (small) ``pellucid.explain`` run whose feature names, category
values and class label carry markup, and opened once from a ``file://`` URL with every request
but the page itself refused. The tests then read that one page: nothing fetched, no script
error, figures drawn, the markup shown as text, no sideways scrolling at 1280 px, and a print
layout in which every collapsible part is open. Each section is photographed; set
``PELLUCID_SCREENSHOTS=folder`` to keep the pictures.

The tests skip, saying why, only where Chromium or Playwright is missing, and never in CI
(``CI`` set): there ``scripts/setup.sh test`` installs both, so a skip would hide a failure.
Nothing is downloaded: Playwright drives the system's Chromium (``executable_path``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pellucid.reports.pdf import CHROMIUM_ENV, find_chromium

IMG = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=1</script>"
HOSTILE = (IMG, SCRIPT)
WIDTH = 1280
# Printable width of an A4 page (210 mm less the report's 2 x 15 mm margins) in CSS pixels;
# a Letter page is wider, so what fits here fits both.
PRINT_WIDTH = round((210 - 30) / 25.4 * 96)
# Parts of the page that scroll sideways by design: the tree drawing alone.
SCROLLERS = ".tree-box"
LAUNCH_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage"]


def _unavailable(why: str):
    if os.environ.get("CI"):
        pytest.fail(f"{why}: CI must run the browser tests (scripts/setup.sh test installs Chromium and Playwright)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        _unavailable(f"no Chromium (apt-get install chromium, or set {CHROMIUM_ENV})")
    return exe


@pytest.fixture(scope="module")
def playwright_api():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        _unavailable(f"Playwright for Python cannot be imported ({e}); pip install playwright")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def report(tmp_path_factory, credit) -> Path:
    """report.html of a small explain run on the credit data, names and values hostile."""
    import pellucid
    from pellucid.demo import CLASSES, TARGET, train_credit_network

    X, y = credit
    df = X.iloc[:1500].assign(**{TARGET: y.iloc[:1500]})
    df = df.rename(columns={"income": IMG, "region": SCRIPT})
    df["home"] = df["home"].replace({"rent": IMG})
    df["employment"] = df["employment"].replace({"student": SCRIPT})
    classes = [CLASSES[0], SCRIPT]  # the network's second output is "bad": named with markup
    df[TARGET] = df[TARGET].replace({CLASSES[1]: SCRIPT})
    # train_credit_network learns its second output from the labels equal to CLASSES[1]
    net, pre = train_credit_network(df.drop(columns=TARGET), df[TARGET].replace({SCRIPT: CLASSES[1]}), epochs=15,
                                    hidden=(32, 16), random_state=0)
    out = tmp_path_factory.mktemp("browser_report")
    res = pellucid.explain(
        net, df, target=TARGET, preprocess=pre, task="classification", classes=classes, out_dir=out,
        n=1500, sizes=(4, 8), surrogates=["decision_tree", "figs"], n_boot=0, attributions=["saliency"],
        attribution_rows=30, verbose=0, random_state=0, meta={"title": f"Browser check {IMG}"},
    )
    return res.html_path


@pytest.fixture(scope="module")
def page(report, chromium, playwright_api):
    """The report open in Chromium at 1280 px, with what it asked for and what went wrong."""
    browser = playwright_api.chromium.launch(executable_path=chromium, headless=True, args=LAUNCH_FLAGS)
    context = browser.new_context(viewport={"width": WIDTH, "height": 900}, service_workers="block")
    url = report.resolve().as_uri()
    seen = {"requests": [], "refused": [], "failed": [], "console": [], "errors": []}

    def route(r):
        if r.request.url == url:
            r.continue_()
        else:
            seen["refused"].append(r.request.url)
            r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    pg.on("request", lambda r: seen["requests"].append(r.url))
    pg.on("requestfailed", lambda r: seen["failed"].append(f"{r.url}: {r.failure}"))
    pg.on("console", lambda m: m.type == "error" and seen["console"].append(f"{m.text} ({m.location})"))
    pg.on("pageerror", lambda e: seen["errors"].append(str(e)))
    pg.goto(url, wait_until="load")
    pg.wait_for_load_state("networkidle")
    pg.seen = seen
    pg.url_ = url
    yield pg
    context.close()
    browser.close()


def _visible_sections(pg):
    return [s for s in pg.locator("section").all() if s.is_visible()]


def test_the_page_asks_for_nothing_but_itself(page):
    seen = page.seen
    outside = [u for u in seen["requests"] + seen["refused"] if u != page.url_]
    assert not outside, f"the report asked for {outside}"
    assert not seen["failed"], f"requests failed: {seen['failed']}"
    assert seen["requests"] == [page.url_]


def test_no_console_or_script_errors(page):
    assert not page.seen["console"], page.seen["console"]
    assert not page.seen["errors"], page.seen["errors"]


def test_images_load_and_figures_have_a_size(page):
    broken = page.evaluate("""() => Array.from(document.images)
        .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.outerHTML.slice(0, 200))""")
    assert not broken, f"images that did not load: {broken}"
    svgs = page.evaluate("""() => Array.from(document.querySelectorAll('svg'))
        .filter(s => !s.parentElement.closest('svg'))
        .map(s => { const r = s.getBoundingClientRect();
                    return {visible: s.checkVisibility(), w: r.width, h: r.height,
                            where: (s.closest('[id]') || {}).id || ''}; })""")
    shown = [s for s in svgs if s["visible"]]
    # The run draws at least the agreement, distillation, importance and rule figures.
    assert len(shown) >= 4, f"only {len(shown)} visible figures: {svgs}"
    flat = [s for s in shown if not (s["w"] > 0 and s["h"] > 0)]
    assert not flat, f"figures drawn with no size: {flat}"


def test_each_section_photographs(page, tmp_path):
    from PIL import Image

    folder = Path(os.environ.get("PELLUCID_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    sections = _visible_sections(page)
    assert len(sections) >= 8, f"only {len(sections)} sections shown"
    for k, s in enumerate(sections):
        name = s.get_attribute("id") or f"section{k}"
        path = folder / f"{k:02d}-{re.sub(r'[^A-Za-z0-9_-]', '_', name)}.png"
        s.screenshot(path=str(path))
        with Image.open(path) as im:
            assert im.width > 0 and im.height > 0, path
            lo, hi = im.convert("L").getextrema()
            assert lo < hi, f"{path} is one colour: an empty section"


def test_markup_in_names_shows_as_text(page):
    assert page.evaluate("() => typeof window.__pwned") == "undefined", "markup from a name ran as a script"
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("img[src='x']").count() == 0
    text = page.evaluate("() => document.body.textContent")
    for s in HOSTILE:
        assert s in text, f"{s!r} is not on the page as text"
    # ... and not as the text of a script of the page's own
    assert page.evaluate("() => Array.from(document.scripts).filter(s => s.textContent.includes('__pwned')).length") == 0
    # the data table names the hostile feature as a feature
    assert page.locator("#data td", has_text=IMG).count() >= 1
    assert IMG in page.title()


def _overflow(page, width: int, scrollers: str | None = SCROLLERS) -> dict:
    return page.evaluate(
        """([width, scrollers]) => {
            const de = document.documentElement;
            const out = [];
            for (const el of document.body.querySelectorAll('*')) {
                if ((scrollers && el.closest(scrollers)) || !el.checkVisibility()) continue;
                const r = el.getBoundingClientRect();
                if (r.right > width + 0.5) out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} right=${Math.round(r.right)}`);
            }
            return {scrollWidth: Math.max(de.scrollWidth, document.body.scrollWidth), offenders: out.slice(0, 10)};
        }""",
        [width, scrollers],
    )


def test_no_sideways_scrolling_at_1280px(page):
    got = _overflow(page, WIDTH)
    assert got["scrollWidth"] <= WIDTH, f"the page is {got['scrollWidth']} px wide at {WIDTH} px: {got['offenders']}"


def test_sortable_tables_reorder_on_click(page):
    """Every sortable table (JavaScript marks its headers) reorders its rows on a header click.
    Zero such tables is a pass: the check covers what the page has."""
    page.emulate_media(media="screen")
    tables = page.locator("table.sortable, table:has(th[data-sort])").all()
    for t in tables:
        if not t.is_visible():
            t.evaluate("t => { for (let d = t.closest('details'); d; d = d.parentElement.closest('details')) d.open = true; }")
        headers = t.locator("thead th.sort, thead th[data-sort]")
        assert headers.count() > 0, f"a sortable table without sort headers: {t.evaluate('t => t.outerHTML.slice(0, 200)')}"
        rows = lambda: t.evaluate("t => Array.from(t.tBodies[0].rows).map(r => r.textContent.trim())")
        before = rows()
        # a column whose cells differ: sorting on it must move rows, one way or the other
        col = t.evaluate("""t => { const rs = Array.from(t.tBodies[0].rows);
            const heads = Array.from(t.tHead.rows[t.tHead.rows.length - 1].cells);
            for (let c = 0; c < heads.length; c++) {
                if (!heads[c].matches('.sort, [data-sort]')) continue;
                const cells = rs.map(r => r.cells[c] ? r.cells[c].textContent.trim() : '');
                if (new Set(cells).size > 1) return c; }
            return -1; }""")
        if len(before) < 2 or col < 0:
            continue
        head = t.locator("thead tr").last.locator("th").nth(col)
        head.click()
        first = rows()
        head.click()
        second = rows()
        assert sorted(first) == sorted(before) == sorted(second), "sorting lost or duplicated rows"
        assert first != before or second != before, f"clicking column {col} did not reorder {before[:3]}..."
        assert first != second or first == before
        assert head.evaluate("h => h.getAttribute('aria-sort')") in ("ascending", "descending")


def test_print_layout_opens_everything(page):
    """In print media every section is laid out and every <details> is open (closed ones too:
    the reader may have closed them)."""
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = false)")
    page.emulate_media(media="print")
    page.set_viewport_size({"width": PRINT_WIDTH, "height": 1000})
    try:
        page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
        boxes = page.evaluate("""() => Array.from(document.querySelectorAll('section')).map(s => {
            const r = s.getBoundingClientRect(); return {id: s.id, w: r.width, h: r.height}; })""")
        assert boxes and all(b["w"] > 0 and b["h"] > 0 for b in boxes), boxes
        hidden = page.evaluate("""() => Array.from(document.querySelectorAll('details')).flatMap(d =>
            Array.from(d.children).filter(c => c.tagName !== 'SUMMARY' && !c.checkVisibility())
                 .map(c => `${(d.closest('[id]') || {}).id || ''}: <${c.tagName.toLowerCase()}>`))""")
        assert not hidden, f"parts of collapsible sections that do not print: {hidden[:10]}"
    finally:
        page.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        page.emulate_media(media="screen")
        page.set_viewport_size({"width": WIDTH, "height": 900})


def test_print_fits_the_page_width(page):
    """Printed, nothing is wider than an A4 page: on paper nothing scrolls (.scroll and
    .tree-box print with overflow visible), and Chromium shrinks the whole document to fit
    its widest part (to about 2/3 at most), then cuts what is still wider."""
    page.emulate_media(media="print")
    page.set_viewport_size({"width": PRINT_WIDTH, "height": 1000})
    try:
        got = _overflow(page, PRINT_WIDTH, scrollers=None)
    finally:
        page.emulate_media(media="screen")
        page.set_viewport_size({"width": WIDTH, "height": 900})
    assert got["scrollWidth"] <= PRINT_WIDTH, f"printed, the page is {got['scrollWidth']} px wide (paper: {PRINT_WIDTH}): {got['offenders']}"


@pytest.mark.parametrize("width", [1024, 1280])
def test_nothing_is_wider_than_its_column(page, width):
    """Every table, figure and block fits the column of its section with every section open:
    a table that overflowed its column (or scrolled inside a box) cut off its last columns."""
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    page.set_viewport_size({"width": width, "height": 900})
    try:
        over = page.evaluate(
            """() => {
                const out = [];
                for (const el of document.querySelectorAll('section table, section figure, section svg, section pre, section div, section p, section ul, section ol')) {
                    if (!el.checkVisibility() || el.closest('.tree-box') || el.parentElement.closest('svg')) continue;
                    const sec = el.closest('section');
                    const cs = getComputedStyle(sec);
                    const right = sec.getBoundingClientRect().right - parseFloat(cs.paddingRight);
                    const r = el.getBoundingClientRect();
                    const hidden = el.scrollWidth - el.clientWidth;
                    if (r.right > right + 0.5 || (el.tagName !== 'svg' && hidden > 1 && getComputedStyle(el).overflowX !== 'visible'))
                        out.push(`${sec.id}: <${el.tagName.toLowerCase()} class="${el.className.baseVal ?? el.className}"> ${Math.round(r.right - right)} px over, ${hidden} px hidden`);
                }
                return out;
            }""")
    finally:
        page.set_viewport_size({"width": WIDTH, "height": 900})
    # The widest tables of a report are on this page, so that the check is not vacuous.
    assert page.locator("table.examples").count() and page.locator("table.compare").count()
    assert not over, f"at {width} px: {over[:10]}"


def _pdf_lines(pdf: Path) -> list[list[list[str]]]:
    """The words of a PDF as pdftotext lays them out: blocks of lines of words."""
    import subprocess
    import xml.etree.ElementTree as ET

    xml = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], capture_output=True, text=True,
                         check=True).stdout
    body = xml.split("<body>", 1)[1].rsplit("</body>", 1)[0]
    return [[[w.text or "" for w in line.iter("word")] for line in block.iter("line")]
            for block in ET.fromstring(f"<body>{body}</body>").iter("block")]


def _split_names(blocks, names) -> list[str]:
    """Names broken across two lines at a place that is not a break between their parts
    (after an underscore, at a space): one line of a block ends with the first piece and the
    next line of the block starts with the rest."""
    found = []
    names = {n for n in names if len(n) >= 2}
    for lines in blocks:
        for line, below in zip(lines, lines[1:], strict=False):
            if not line or not below:
                continue
            text, t2 = line[-1], below[0]
            for name in names:
                if not (text and name.startswith(text) and text != name):
                    continue
                k = len(text)
                if name[k - 1] in "_ /-" or name[k] in " _":
                    continue  # a break the page allows
                rest = name[k:].split(" ")[0]
                if t2 == rest or (len(rest) >= 3 and t2.startswith(rest)) or (len(t2) >= 3 and rest.startswith(t2)):
                    found.append(f"{text!r} + {t2!r} ({name!r})")
    return found


def test_printed_names_and_ids_are_never_split_inside_a_word(report, chromium, tmp_path):
    """On paper a name breaks only between its parts: 'BoostedRules' never as 'Booste dRules',
    a row id never as '609' over '3'."""
    import json
    import shutil

    if shutil.which("pdftotext") is None:
        _unavailable("no pdftotext (apt-get install poppler-utils)")
    from pellucid.reports.pdf import html_to_pdf

    payload = json.loads((report.parent / "report.json").read_text())
    pdf = html_to_pdf(report, tmp_path / "report.pdf", chromium=chromium)
    blocks = _pdf_lines(pdf)
    words = [w for lines in blocks for line in lines for w in line]
    names = [s["label"] for s in payload["surrogates"]] + [f["name"] for f in payload["data"]["schema"]["features"]]
    names += [r["row"] for r in payload["local"]["rows"]] + [e["row"] for e in payload["disagreement"]["examples"] if e["row"]]
    names += [i["row"] for i in payload["attributions"]["instances"]]
    assert len(words) > 1000 and payload["disagreement"]["examples"]
    split = _split_names(blocks, names)
    assert not split, f"split on paper: {split[:10]}"
