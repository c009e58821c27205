"""The set-up leaves a working headless Qt: PySide6 and pyqtgraph render offscreen (the viewer builds on this)."""

import numpy as np


def test_pyqtgraph_renders_an_image_offscreen(qtbot):
    import pyqtgraph as pg
    from PySide6.QtGui import QImage

    import medviewer.gui  # noqa: F401  (sets row-major image order for every pyqtgraph item, as the viewer uses)

    view = pg.ImageView()
    qtbot.addWidget(view)
    view.resize(200, 200)
    image = np.zeros((64, 64), np.float32)
    image[:, 32:] = 1.0  # right half white
    view.setImage(image, levels=(0, 1), autoRange=True)  # (rows, columns), as medviewer.gui configures
    view.ui.histogram.hide()
    view.ui.roiBtn.hide()
    view.ui.menuBtn.hide()
    view.show()
    qtbot.waitExposed(view)
    grabbed = view.getView().scene().views()[0].grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    width, height = grabbed.width(), grabbed.height()
    pixels = np.frombuffer(grabbed.constBits(), np.uint8, count=grabbed.sizeInBytes())
    pixels = pixels.reshape(height, grabbed.bytesPerLine())[:, :width]
    middle_row = pixels[height // 2]
    # The image fills the view: dark on the left, bright on the right.
    assert middle_row[width // 8] < 64 and middle_row[width - width // 8] > 192


def test_emitting_a_signal_leaks_no_reference_to_true():
    """PySide6 6.12.0 on Python < 3.12 took a reference from True on every emit and the viewer aborted after
    a few hundred mouse moves; pyproject.toml excludes it, and this catches a build that has the bug."""
    import sys

    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        fired = Signal(int)

    emitter = Emitter()
    before = sys.getrefcount(True)
    for _ in range(50):
        emitter.fired.emit(1)
    assert sys.getrefcount(True) - before >= -5
