"""Challenge submissions: pack trained runs into the flat zip the server runs, and validate a
zip the way the server's harness would.

- :func:`package_submission` (``eegattn package``): two run folders -> ``submission.py`` +
  ``weights_challenge_1.pt`` + ``weights_challenge_2.pt`` (TorchScript) + ``manifest.json``.
- :func:`validate_submission` (``eegattn validate-submission``): unpack, run the harness's
  sequence in a fresh Python process without eegattn or braindecode, report every problem with
  its fix, and optionally score both challenges on a release.
"""

from eegattn.submission.package import (
    PackageResult,
    export_model,
    package_models,
    package_submission,
)
from eegattn.submission.validate import Finding, ValidationReport, validate_submission

__all__ = [
    "Finding",
    "PackageResult",
    "ValidationReport",
    "export_model",
    "package_models",
    "package_submission",
    "validate_submission",
]
