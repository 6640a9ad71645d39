"""A report as one self-contained HTML file (inline CSS, charts as inline SVG: nothing to
fetch, it opens offline and prints on A4) or as CSV (the record-level section, one typed
column each, as `model.typed` writes them)."""

from __future__ import annotations

import csv
import io
from html import escape

from hub.reports.model import Chart, Report, Section, typed

__all__ = ["to_csv", "to_html"]

_CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2933;
margin:2.5em auto;max-width:64em;padding:0 1.5em}
h1{font-size:1.6em;margin:0 0 .2em}h2{font-size:1.15em;margin:2em 0 .5em;border-bottom:
2px solid #1f6feb;padding-bottom:.2em}.meta{color:#52606d;margin:0 0 1.2em}
.summary li{margin:.2em 0}table{border-collapse:collapse;width:100%;margin:.4em 0}
th,td{padding:.35em .6em;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
th{background:#f5f7fa;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:
tabular-nums;white-space:nowrap}td.d{white-space:nowrap}tr.total td{font-weight:700;border-top:2px solid #1f2933;border-bottom:none}
.note{color:#52606d;font-size:.92em}.empty{color:#52606d;font-style:italic}
svg{margin:.6em 0 1em}@media print{body{margin:0;max-width:none}h2{break-after:avoid}}
"""
_NUMERIC = ("int", "decimal")
_CLASS = {"int": " class=n", "decimal": " class=n", "date": " class=d", "datetime": " class=d"}
_BAR = "#1f6feb"


def to_html(report: Report) -> str:
    """The whole report as one HTML document."""
    period = f" · {report.period[0]} to {report.period[1]}" if report.period else ""
    version = f", mapping v{report.mapping_version}" if report.mapping_version else ""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(report.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1 id="title">{escape(report.title)}</h1>',
        f'<p class="meta" id="meta">As of {escape(typed(report.as_of, "datetime"))} (position '
        f"{report.position}{escape(version)}){escape(period)} · generated "
        f"{escape(report.generated_at)} by synchub</p>",
    ]
    if report.summary:
        items = "".join(f"<li>{escape(line)}</li>" for line in report.summary)
        parts.append(f'<ul class="summary" id="summary">{items}</ul>')
    for i, section in enumerate(report.sections):
        parts.append(_section(section, i))
    parts.append("</body></html>")
    return "\n".join(parts)


def _section(section: Section, index: int) -> str:
    out = [f'<section id="s{index}"><h2>{escape(section.title)}</h2>']
    if section.chart is not None and section.chart.values:
        out.append(_svg(section.chart, index))
    if not section.rows:
        out.append('<p class="empty">Nothing here.</p>')
    else:
        head = "".join(
            f"<th{' class=n' if c.type in _NUMERIC else ''}>{escape(c.label)}</th>"
            for c in section.columns
        )
        out.append(f'<table id="t{index}"><thead><tr>{head}</tr></thead><tbody>')
        for row in section.rows:
            out.append("<tr>" + _cells(section, row) + "</tr>")
        out.append("</tbody>")
        if section.totals is not None:
            out.append(
                '<tfoot><tr class="total">' + _cells(section, section.totals) + "</tr></tfoot>"
            )
        out.append("</table>")
    if section.note:
        out.append(f'<p class="note">{escape(section.note)}</p>')
    out.append("</section>")
    return "\n".join(out)


def _cells(section: Section, row: dict[str, object]) -> str:
    return "".join(
        f'<td{_CLASS.get(c.type, "")} data-col="{escape(c.name)}">'
        f"{escape(typed(row.get(c.name), c.type))}</td>"
        for c in section.columns
    )


def _svg(chart: Chart, index: int) -> str:
    """Horizontal bars with their labels and values, sized to the largest."""
    bar_h, gap, label_w, width = 22, 8, 220, 640
    top = max(chart.values) or 1.0
    height = len(chart.values) * (bar_h + gap) + 30
    out = [
        f'<svg id="c{index}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(chart.title)}">',
        f'<text x="0" y="14" font-size="13" font-weight="600">{escape(chart.title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(chart.labels, chart.values, strict=True)):
        y = 26 + i * (bar_h + gap)
        w = max(1.0, (width - label_w - 90) * value / top)
        out.append(
            f'<text x="0" y="{y + 15}" font-size="12">{escape(label[:32])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{_BAR}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12">'
            f"{value:,.2f} {escape(chart.unit)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def to_csv(report: Report) -> str:
    """The record-level section as CSV: a header of column names, then typed values."""
    section = report.sections[report.csv_section]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.name for c in section.columns])
    for row in section.rows:
        writer.writerow([typed(row.get(c.name), c.type) for c in section.columns])
    return buf.getvalue()
