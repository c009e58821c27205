"""The grid of image panes (original, degraded input, enhanced, error map): its layouts, linked views and crosshair."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QWidget

from medviewer.gui.panes import ImagePane

PANE_TITLES = {
    "original": "Original (acquired)",
    "input": "Degraded input (simulated)",
    "enhanced": "Enhanced",
    "error": "Error map",
}
MASTER_ROLE = "original"
LAYOUTS = ("1x3", "2x2", "single")
# Where each pane sits, as (row, column), in the multi-pane layouts.
_POSITIONS = {
    "1x3": {"original": (0, 0), "enhanced": (0, 1), "error": (0, 2)},
    "2x2": {"original": (0, 0), "input": (0, 1), "enhanced": (1, 0), "error": (1, 1)},
}


class UnknownLayoutError(ValueError):
    """A layout or pane role that the grid does not have (a programming error, not a user's)."""


class PaneGrid(QWidget):
    """Four panes that zoom, pan and point together; the layout decides which are shown."""

    cursorMoved = Signal(object)  # (row, col) in original-image coordinates, or None
    windowDragged = Signal(float, float, bool)
    sliceWheel = Signal(int)

    LAYOUTS = LAYOUTS

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.panes: dict[str, ImagePane] = {role: ImagePane(role, title, self) for role, title in PANE_TITLES.items()}
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        master = self.panes[MASTER_ROLE].view_box
        for pane in self.panes.values():
            if pane.view_box is not master:
                # pyqtgraph's own linking: both directions, and each view keeps its locked aspect.
                pane.view_box.setXLink(master)
                pane.view_box.setYLink(master)
            pane.cursorMoved.connect(self._share_cursor)
            pane.windowDragged.connect(self.windowDragged)
            pane.sliceWheel.connect(self.sliceWheel)
        self.layout_name = ""
        self.single_role = MASTER_ROLE
        self.set_layout("1x3")

    def pane(self, role: str) -> ImagePane:
        try:
            return self.panes[role]
        except KeyError:
            raise UnknownLayoutError(f"no pane {role!r}; the panes are {', '.join(self.panes)}") from None

    def set_layout(self, name: str, single_role: str = MASTER_ROLE) -> None:
        """ "1x3": original | enhanced | error; "2x2": original, input / enhanced, error; "single": one pane."""
        if name not in LAYOUTS:
            raise UnknownLayoutError(f"no layout {name!r}; the layouts are {', '.join(LAYOUTS)}")
        positions = {self.pane(single_role).role: (0, 0)} if name == "single" else _POSITIONS[name]
        for pane in self.panes.values():
            self._grid.removeWidget(pane)
        for row in range(2):
            self._grid.setRowStretch(row, 0)
        for column in range(3):
            self._grid.setColumnStretch(column, 0)
        for role, pane in self.panes.items():
            if role in positions:
                row, column = positions[role]
                self._grid.addWidget(pane, row, column)
                self._grid.setRowStretch(row, 1)
                self._grid.setColumnStretch(column, 1)
                pane.show()
            else:
                pane.hide()  # hidden, not deleted: its image and settings are there when the layout returns
        self._grid.activate()  # geometry now, not at the next event loop turn: callers map positions right away
        self.layout_name = name
        self.single_role = single_role

    def visible_roles(self) -> list[str]:
        return [role for role, pane in self.panes.items() if pane.isVisibleTo(self)]

    def reset_view(self) -> None:
        """Fit the image: the master pane fits and the linked panes follow."""
        master = self.panes[MASTER_ROLE]
        if master.has_image():
            master.reset_view()
            return
        for pane in self.panes.values():
            if pane.has_image():
                pane.reset_view()
                return

    def _share_cursor(self, position: tuple[float, float] | None) -> None:
        for pane in self.panes.values():
            pane.show_cursor(position)
        self.cursorMoved.emit(position)
