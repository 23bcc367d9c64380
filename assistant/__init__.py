"""Customer Segment Assistant: K-Means customer segmentation you can talk to."""

__version__ = "0.1.0"
