"""Loading studies without Qt: DICOM (pydicom + pylibjpeg), PNG/JPEG/TIFF/NPY, lazy pixels, export."""

from medviewer.io.study import LoadedStudies, Series, Study, load_studies
from medviewer.io.window import Window, apply_window, auto_window, window

__all__ = ["LoadedStudies", "Series", "Study", "Window", "apply_window", "auto_window", "load_studies", "window"]
