"""`tillit node validate`: check a sector extract against its contract, on the node.

Order matters for privacy: the file is read, the identity codes are replaced by keyed hashes, and
only then does anything else (type checks, Great Expectations, Data Docs) see the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nodes.extract import pseudonymise, read_extract
from nodes.secret import NodeSecret
from schemas.contract import Contract
from validation import Source, Timings, ValidationReport, validate_frame

__all__ = ["ValidateRequest", "validate_extract"]


@dataclass(frozen=True)
class ValidateRequest:
    data: Path
    contract: Contract
    secret: NodeSecret
    report_path: Path | None = None
    docs_dir: Path | None = None
    encoding: str = "utf-8"
    delimiter: str = ","


def validate_extract(request: ValidateRequest) -> tuple[ValidationReport, Timings]:
    """Validate one extract; writes the report and Data Docs when asked. Raises only for unusable input."""
    extract = read_extract(request.data, encoding=request.encoding, delimiter=request.delimiter)
    frame, identity = pseudonymise(extract.frame, request.contract, request.secret.pseudonym_key)
    source = Source(file_name=request.data.name, file_format=extract.format,
                    sha256=extract.sha256, size_bytes=extract.size_bytes)
    pseudonymisation = {"method": "keyed BLAKE2b-128", "key_source": request.secret.source,
                        "key_id": request.secret.key_id}
    report, timings = validate_frame(frame, request.contract, identity, source, pseudonymisation,
                                     docs_dir=request.docs_dir)
    if request.report_path is not None:
        report.write(request.report_path)
    return report, timings
