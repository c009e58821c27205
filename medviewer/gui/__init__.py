"""The desktop viewer: a thin PySide6 + pyqtgraph view over the Qt-free core (io, models, enhance, metrics)."""

import pyqtgraph as pg

# Our arrays are (rows, columns) like numpy and DICOM; pyqtgraph's default is (x, y).
pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
