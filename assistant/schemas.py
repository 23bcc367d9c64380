"""Public entry point (stable import path): the customer schemas live in :mod:`assistant.core.schemas`."""

from assistant.core.schemas import CustomerProfile, ProfileDraft, SegmentInfo, SegmentResult, parse_profile

__all__ = ["CustomerProfile", "ProfileDraft", "SegmentInfo", "SegmentResult", "parse_profile"]
