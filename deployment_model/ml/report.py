"""A version's training report, its layout: what both functions agree on. Plain Python, no AWS.

The train function builds reports (report_build.py, with the pictures from report_images.py); the inference
function serves them (api/report_page.py) and needs only these names, so nothing here imports a library.
"""

from __future__ import annotations

REPORT_SCHEMA_VERSION = 1
# Artifact kinds of a version (metadata `artifacts`), and the file each is stored as in the version's folder.
REPORT_KIND = "report"
REPORT_FILE = "report.json"
IMAGE_KINDS = {
    "report_confusion_matrix": "report-confusion-matrix.png",
    "report_decision_regions": "report-decision-regions.png",
}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# The per-feature statistics, in reading order (JSON objects are stored with sorted keys).
FEATURE_STATISTICS = ("count", "mean", "std", "min", *(f"p{round(q * 100):02d}" for q in QUANTILES), "max")
