"""Run reports and comparison views.

``write_report(run_dir)`` writes one self-contained ``report.html`` per run directory
(plus the data behind its figures in ``report_data/``); ``write_comparison(run_dirs)``
writes Markdown and HTML tables that rank only comparable runs against each other.

Both are imported on first use, so ``import serkit.reporting`` stays cheap (no
matplotlib / scikit-learn import until a report is written).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["write_report", "write_comparison"]

if TYPE_CHECKING:  # pragma: no cover
    from .compare import write_comparison
    from .report import write_report


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from .report import write_report

        return write_report
    if name == "write_comparison":
        from .compare import write_comparison

        return write_comparison
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
