"""The study browser: opened studies and their series as a tree, with thumbnails, for choosing what to view."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from medviewer.gui.qimage import thumbnail_pixmap
from medviewer.io.study import LoadedStudies, Series, Study

THUMBNAIL_SIZE = 64
COLUMNS = ("Series", "Modality", "Size")
_KEY_ROLE = Qt.ItemDataRole.UserRole

SeriesKey = tuple


def series_key(series: Series) -> SeriesKey:
    """What makes a series the same series when a folder is opened twice.

    The Series UID alone is not enough: one UID can hold several stacks (a localizer beside the axials),
    which the loader splits by geometry, so the geometry is part of the key as it is there.
    """
    return (series.uid, series.shape, series.is_colour, series.orientation)


def series_size_text(series: Series) -> str:
    """'columns x rows x frames', the order a radiologist reads a matrix size in."""
    rows, columns = series.shape
    return f"{columns} x {rows} x {len(series)}"


def series_tooltip(series: Series) -> str:
    spacing = series.pixel_spacing_mm
    spacing_text = f"{spacing[0]:g} x {spacing[1]:g} mm (row x column)" if spacing else "unknown"
    return "\n".join(
        (
            f"Transfer syntax: {series.transfer_syntax}",
            f"Units: {series.units or 'none (stored values)'}",
            f"Pixel spacing: {spacing_text}",
            f"Frames: {len(series)}",
            *(f"Warning: {note}" for note in series.notes),
        )
    )


def study_title(study: Study) -> str:
    """Patient, description and date on one line; a raster file's study has only its file name."""
    parts = [part for part in (_person_name(study.patient_name), study.description) if part]
    title = " - ".join(parts) or study.uid
    date = _date_text(study.date)
    return f"{title} ({date})" if date else title


def _person_name(dicom_name: str) -> str:
    """DICOM PN 'Family^Given^Middle^Prefix^Suffix' as 'Family, Given Middle'."""
    family, _, rest = dicom_name.partition("^")
    given = " ".join(part for part in rest.split("^") if part)
    return f"{family}, {given}" if family and given else (family or given)


def _date_text(dicom_date: str) -> str:
    """DICOM DA 'YYYYMMDD' as ISO 'YYYY-MM-DD'; anything else as it is."""
    if len(dicom_date) == 8 and dicom_date.isdigit():
        return f"{dicom_date[:4]}-{dicom_date[4:6]}-{dicom_date[6:]}"
    return dicom_date


class StudyBrowser(QTreeWidget):
    """Studies (top level) and their series (children). Several opens accumulate; selecting a series
    (by the user or by `select_series`) emits `seriesSelected`."""

    seriesSelected = Signal(object)  # Series

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(list(COLUMNS))
        self.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.setSelectionMode(QTreeWidget.SelectionMode.SingleSelection)
        self.setUniformRowHeights(False)
        self.setRootIsDecorated(True)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the description is what users read
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self._series: dict[SeriesKey, tuple[Series, QTreeWidgetItem]] = {}
        # Items carry a plain number: Qt would turn a tuple key into a list, which cannot index a dict.
        self._keys: list[SeriesKey] = []
        self._studies: dict[str, QTreeWidgetItem] = {}
        self.itemSelectionChanged.connect(self._emit_selected_series)

    # --- contents -----------------------------------------------------------------------------
    def add_studies(self, loaded: LoadedStudies) -> None:
        """Append the studies' series; a series already listed stays as it is (with its thumbnail)."""
        for study in loaded.studies:
            for series in study.series:
                key = series_key(series)
                if key in self._series:
                    continue
                item = self._series_item(series)
                self._study_item(study).addChild(item)
                self._series[key] = (series, item)

    def clear_studies(self) -> None:
        self._series.clear()
        self._keys.clear()
        self._studies.clear()
        self.clear()

    def series_list(self) -> list[Series]:
        """Every listed series, in the tree's order."""
        listed = []
        for study_index in range(self.topLevelItemCount()):
            study_item = self.topLevelItem(study_index)
            for child_index in range(study_item.childCount()):
                listed.append(self._series_of(study_item.child(child_index)))
        return listed

    def set_thumbnail(self, series: Series, brightness: np.ndarray) -> None:
        """Show `brightness` (a displayed slice, [0, 1]) as the series' icon; unknown series are ignored,
        since a thumbnail may arrive from a worker after the list was cleared."""
        listed = self._series.get(series_key(series))
        if listed is not None:
            listed[1].setIcon(0, QIcon(thumbnail_pixmap(brightness, THUMBNAIL_SIZE)))

    def select_series(self, series: Series) -> None:
        listed = self._series.get(series_key(series))
        if listed is not None:
            self.setCurrentItem(listed[1])

    def selected_series(self) -> Series | None:
        items = self.selectedItems()
        return self._series_of(items[0]) if items else None

    # --- items --------------------------------------------------------------------------------
    def _study_item(self, study: Study) -> QTreeWidgetItem:
        item = self._studies.get(study.uid)
        if item is None:
            item = QTreeWidgetItem([study_title(study)])
            item.setToolTip(0, f"Patient ID: {study.patient_id or 'none'}\nStudy UID: {study.uid}")
            # A study is a heading: choosing it would not say which series to show.
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.addTopLevelItem(item)
            item.setFirstColumnSpanned(True)
            item.setExpanded(True)
            self._studies[study.uid] = item
        return item

    def _series_item(self, series: Series) -> QTreeWidgetItem:
        modality = series.modality or series.source_format
        item = QTreeWidgetItem([series.description, modality, series_size_text(series)])
        self._keys.append(series_key(series))
        item.setData(0, _KEY_ROLE, len(self._keys) - 1)
        tooltip = series_tooltip(series)
        for column in range(len(COLUMNS)):
            item.setToolTip(column, tooltip)
        return item

    def _series_of(self, item: QTreeWidgetItem) -> Series | None:
        number = item.data(0, _KEY_ROLE)
        return None if number is None else self._series[self._keys[number]][0]

    def _emit_selected_series(self) -> None:
        series = self.selected_series()
        if series is not None:
            self.seriesSelected.emit(series)
