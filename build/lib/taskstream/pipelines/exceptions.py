"""Pipeline failures, one class each."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of the pipeline errors."""


class UploadTooLarge(PipelineError):
    """The upload is bigger than PIPELINE_MAX_UPLOAD_BYTES."""


class UnsupportedUpload(PipelineError):
    """The upload's content is not a CSV file we can read."""


class InvalidCsv(PipelineError):
    """The CSV cannot be processed at all (no header, duplicate or too many columns)."""


class TransientStepError(PipelineError):
    """A step failed in a way worth retrying (storage or network hiccup)."""


class MissingFile(PipelineError):
    """A file the pipeline needs is gone; retrying the step cannot bring it back."""


class PipelineBusy(PipelineError):
    """The pipeline still has steps in flight."""


class PipelineNotAllowed(PipelineError):
    """Only the pipeline's owner or staff may do this."""
