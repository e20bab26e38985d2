"""The dashboard's SVG charts: well-formed SVG, bars in proportion, text escaped, nothing the
page's policy would block (no script, no style attribute)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from krypton.web.pages import charts
from krypton.web.pages.charts import ConfirmationTime, DayVolume

NS = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    for node in root.iter():
        assert node.tag not in (f"{NS}script", f"{NS}style", f"{NS}foreignObject")
        assert "style" not in node.attrib and not any(a.startswith("on") for a in node.attrib)
    return root


def _bars(root: ET.Element) -> list[ET.Element]:
    # The background is the one rect without a tooltip; every bar has one.
    return [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text")]


def test_volume_chart_draws_a_bar_per_day_in_proportion_with_the_amounts_as_tooltips() -> None:
    days = [DayVolume("2026-12-01", 1_500_000_000), DayVolume("2026-12-02", 0),
            DayVolume("2026-12-03", 3_000_000_000)]
    root = _parse(charts.volume_chart("TON", 9, days))
    bars = _bars(root)
    assert [b.find(f"{NS}title").text for b in bars] == [  # type: ignore[union-attr]
        "2026-12-01: 1.5 TON", "2026-12-02: 0 TON", "2026-12-03: 3 TON"]
    heights = [float(b.attrib["height"]) for b in bars]
    assert heights[2] == charts.HEIGHT - charts.TOP - charts.BOTTOM  # the largest fills the plot
    assert heights[0] == heights[2] / 2
    assert heights[1] == 1.0  # a day without volume is a hairline, still there
    assert "Daily volume, TON" in _texts(root) and "3" in _texts(root)  # title and top value
    assert {"12-01", "12-02", "12-03"} <= set(_texts(root))  # first, middle, last day


def test_volume_chart_without_volume_says_so() -> None:
    root = _parse(charts.volume_chart("USDT_TRC20", 6, [DayVolume("2026-12-01", 0)] * 30))
    assert _bars(root) == []
    assert "No USDT_TRC20 settled in these 30 days." in _texts(root)


def test_text_is_escaped() -> None:
    svg = charts.volume_chart("<b>&", 0, [DayVolume("2026-12-01", 5)])
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg
    root = _parse(svg)
    assert "Daily volume, <b>&" in _texts(root)
    label = '"/><script>x</script>'
    root = _parse(charts.confirmation_chart([ConfirmationTime(label, 10)]))
    assert _bars(root)[0].find(f"{NS}title").text == f"{label}: 10 s"  # type: ignore[union-attr]


def test_confirmation_chart_marks_the_median_and_the_slow_payments() -> None:
    times = [ConfirmationTime(f"pay_{i}", s) for i, s in enumerate([10, 12, 11, 60, 9])]
    root = _parse(charts.confirmation_chart(times))
    bars = _bars(root)
    assert len(bars) == 5
    fills = [b.attrib["fill"] for b in bars]
    assert fills == [charts.BAR, charts.BAR, charts.BAR, charts.SLOW, charts.BAR]
    assert "median 11 s" in _texts(root) and "60 s" in _texts(root)
    dashed = [line for line in root.iter(f"{NS}line") if "stroke-dasharray" in line.attrib]
    assert len(dashed) == 1
    plot_bottom = charts.HEIGHT - charts.BOTTOM
    expected_y = plot_bottom - (plot_bottom - charts.TOP) * 11 / 60
    assert abs(float(dashed[0].attrib["y1"]) - expected_y) < 0.1


def test_confirmation_chart_without_payments_says_so() -> None:
    root = _parse(charts.confirmation_chart([]))
    assert "No confirmed payments yet." in _texts(root)


def test_durations_read_naturally() -> None:
    assert [charts.duration(s) for s in (4, 89, 210, 7200)] == ["4 s", "89 s", "3.5 min", "2.0 h"]
