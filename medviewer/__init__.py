"""MedViewer: open medical studies, enhance them with deep-learning models, compare side by side."""

__version__ = "0.1.0"
