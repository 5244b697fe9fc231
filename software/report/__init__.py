"""Reports: the flow's summary and its self-contained HTML page with plots."""

from .html import write_report

__all__ = ["write_report"]
