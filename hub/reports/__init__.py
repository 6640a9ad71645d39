"""Reports for finance and compliance: built from the store as of a moment (`builders`),
written as one self-contained HTML file or as CSV (`render`)."""

from hub.reports.builders import REPORTS, Period
from hub.reports.model import Chart, Column, Report, Section, typed
from hub.reports.render import to_csv, to_html

__all__ = [
    "REPORTS",
    "Chart",
    "Column",
    "Period",
    "Report",
    "Section",
    "to_csv",
    "to_html",
    "typed",
]
