"""Run reports and comparison views.

``write_report(run_dir)`` writes one self-contained ``report.html`` per run directory
(plus the data behind its figures in ``report_data/``); ``write_comparison(run_dirs)``
writes Markdown and HTML tables that rank only comparable runs against each other.
"""

from .compare import write_comparison
from .report import write_report

__all__ = ["write_report", "write_comparison"]
