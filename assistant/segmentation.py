"""Public entry point (stable import path): the service lives in :mod:`assistant.model.segmentation`."""

from assistant.model.segmentation import SegmentationService

__all__ = ["SegmentationService"]
