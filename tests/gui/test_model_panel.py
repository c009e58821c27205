"""The model panel lists the registry by task, shows a model's card, and turns the reference controls into a
ReferenceChoice that fits the chosen model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from medviewer.enhance.degrade import InvalidDegradationError, parse_degradation
from medviewer.enhance.session import ReferenceChoice
from medviewer.errors import MedViewerError
from medviewer.gui.model_panel import ModelPanel
from medviewer.models.classical import CLASSICAL_METHODS
from medviewer.models.registry import ModelRegistry, discover_models
from tests.models.model_folder import write_model

NETWORK_ID = "tiny-srcnn-x2"


@pytest.fixture(scope="module")
def models_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_model(folder, model_id=NETWORK_ID)
    write_model(folder, model_id="broken", card_changes={"parameters": 7})
    return folder


@pytest.fixture(scope="module")
def registry(models_folder) -> ModelRegistry:
    return discover_models(folders=[models_folder])


@pytest.fixture
def panel(qtbot, registry) -> ModelPanel:
    widget = ModelPanel()
    qtbot.addWidget(widget)
    widget.set_registry(registry)
    widget.resize(400, 700)
    widget.show()
    return widget


def tree_groups(panel: ModelPanel) -> dict[str, list[str]]:
    tree = panel._tree
    groups = {}
    for index in range(tree.topLevelItemCount()):
        heading = tree.topLevelItem(index)
        groups[heading.text(0)] = [heading.child(c).text(0) for c in range(heading.childCount())]
    return groups


def test_models_are_grouped_by_task_with_networks_beside_classical_methods(panel, registry):
    groups = tree_groups(panel)
    assert list(groups) == ["Denoising", "Super-resolution", "Contrast"]  # TASKS order; no translation model
    expected = {
        "Denoising": {"Non-local means (classical)"},
        "Contrast": {
            "Histogram equalisation (classical)",
            "CLAHE (classical)",
            "Unsharp mask / edge enhancement (classical)",
        },
        "Super-resolution": {"Test srcnn"}
        | {f"{kind} x{scale} (classical)" for kind in ("Bicubic", "Lanczos") for scale in (2, 3, 4)},
    }
    assert {heading: set(names) for heading, names in groups.items()} == expected
    assert sum(len(names) for names in groups.values()) == len(CLASSICAL_METHODS) + 1


def test_network_details_show_its_card(panel, models_folder):
    card = json.loads((models_folder / f"{NETWORK_ID}.json").read_text())
    panel.select_model(NETWORK_ID)
    assert panel.selected_entry().id == NETWORK_ID
    details = panel.details_text()
    for value in (card["name"], card["id"], card["architecture"], card["training_data"], card["intended_use"]):
        assert value in details
    assert f"Limits: {card['limits']}" in details
    assert f"Parameters: {card['parameters']:,}" in details
    assert "Scale: x2" in details and "Task: Super-resolution" in details and "Kind: network" in details
    validation = card["validation"]
    assert f"PSNR {validation['psnr']:.2f} dB, SSIM {validation['ssim']:.4f} on {validation['degradation']}" in details
    assert f"Date: {card['date']}" in details


def test_classical_details_show_the_description(panel):
    nlm = next(method for method in CLASSICAL_METHODS if method.id == "nlm")
    panel.select_model("nlm")
    details = panel.details_text()
    assert nlm.description in details
    assert "Kind: classical" in details and "Scale: same size" in details
    assert "Architecture" not in details


def test_clicking_a_model_selects_it(qtbot, panel):
    item = panel._items["clahe"]
    rect = panel._tree.visualItemRect(item)
    with qtbot.waitSignal(panel.selectedEntryChanged, timeout=1000) as blocker:
        qtbot.mouseClick(panel._tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args[0].id == "clahe"
    assert panel.selected_entry().id == "clahe"


def test_checked_models_are_the_ones_to_compare(panel):
    assert panel.checked_entries() == []
    panel.set_checked(["nlm", NETWORK_ID, "not-a-model"])
    assert [entry.id for entry in panel.checked_entries()] == ["nlm", NETWORK_ID]
    panel._items["clahe"].setCheckState(0, Qt.CheckState.Checked)  # as a click on the box does
    assert {entry.id for entry in panel.checked_entries()} == {"nlm", NETWORK_ID, "clahe"}


def test_reference_choice_for_each_mode(panel, tmp_path):
    panel.select_model("nlm")
    panel.set_reference_mode("simulate")
    panel.set_degradation("lowdose:300")
    assert panel.reference_choice() == ReferenceChoice("simulate", parse_degradation("lowdose:300"))
    panel.set_reference_mode("none")
    assert panel.reference_choice() == ReferenceChoice("none")
    panel.set_reference_mode("paired")
    with pytest.raises(MedViewerError, match="paired reference"):
        panel.reference_choice()
    reference = tmp_path / "full_dose.dcm"
    panel.set_paired_reference(reference)
    assert panel.reference_choice() == ReferenceChoice("paired", reference_path=reference)
    assert panel._paired_label.text() == "full_dose.dcm"


def test_a_bad_spec_raises_the_degradation_error(panel):
    panel.set_reference_mode("simulate")
    panel.set_degradation("blur:3")
    with pytest.raises(InvalidDegradationError):
        panel.reference_choice()


@pytest.mark.parametrize(
    ("typed", "model_id", "expected"),
    [
        ("noise:15", "bicubic-x4", "sr:4"),  # a super-resolution model can only be scored on sr:<scale>
        ("lowdose:300", NETWORK_ID, "sr:2"),
        ("sr:2", "lanczos-x3", "sr:3"),
        ("sr:4", "nlm", "noise:25"),  # a same-size model cannot undo a downscale
        ("noise:15", "clahe", "noise:15"),  # already fits: the user's choice stays
        ("sr:4", "bicubic-x4", "sr:4"),
        ("noise:1", "bicubic-x2", "sr:2"),
        ("nois", "bicubic-x2", "nois"),  # not a spec yet: the user is typing
    ],
)
def test_simulate_spec_follows_the_models_scale(panel, typed, model_id, expected):
    panel.set_reference_mode("simulate")
    panel.set_degradation(typed)
    panel.select_model(model_id)
    assert panel.degradation_spec() == expected


def test_spec_is_left_alone_outside_simulate_mode_and_fitted_on_return(panel):
    panel.select_model("nlm")
    panel.set_degradation("noise:50")
    panel.set_reference_mode("none")
    panel.select_model("bicubic-x2")
    assert panel.degradation_spec() == "noise:50"
    panel.set_reference_mode("simulate")
    assert panel.degradation_spec() == "sr:2"


def test_buttons_request_jobs_and_are_off_while_busy(qtbot, panel):
    for button, signal in (
        (panel._enhance_slice, panel.enhanceSliceRequested),
        (panel._enhance_series, panel.enhanceSeriesRequested),
        (panel._compare, panel.compareRequested),
        (panel._choose_paired, panel.pairedReferenceRequested),
    ):
        with qtbot.waitSignal(signal, timeout=1000):
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    panel.set_busy(True)
    with qtbot.assertNotEmitted(panel.enhanceSliceRequested, wait=50):
        qtbot.mouseClick(panel._enhance_slice, Qt.MouseButton.LeftButton)
    assert not panel._compare.isEnabled() and not panel._enhance_series.isEnabled()
    panel.set_busy(False)
    assert panel._enhance_slice.isEnabled()


def test_models_not_loaded_are_listed_with_the_reason(qtbot, panel, registry):
    assert [skipped.path.name for skipped in registry.skipped] == ["broken.json"]
    reason = registry.skipped[0].reason
    assert "parameters" in reason
    assert panel.skipped_text() == f"broken.json: {reason}"
    assert panel._skipped_toggle.isVisible() and "Not loaded: 1" in panel._skipped_toggle.text()
    assert reason in panel._skipped_toggle.toolTip()
    assert not panel._skipped_list.isVisible()
    qtbot.mouseClick(panel._skipped_toggle, Qt.MouseButton.LeftButton)
    assert panel._skipped_list.isVisible() and reason in panel._skipped_list.text()


def test_a_new_registry_keeps_selection_and_checks(panel):
    panel.select_model("nlm")
    panel.set_checked(["clahe", NETWORK_ID])
    panel.set_registry(discover_models(folders=[]))  # the network is gone
    assert panel.selected_entry().id == "nlm"
    assert [entry.id for entry in panel.checked_entries()] == ["clahe"]
    assert not panel._skipped_toggle.isVisible()


def test_the_default_denoiser_is_preselected_and_labelled(qtbot, tmp_path):
    denoiser = {"architecture": "dncnn", "arguments": {"depth": 3, "width": 4}, "task": "denoise", "scale": 1}
    write_model(tmp_path, model_id="shipped-denoiser", card_changes={"default": True, "name": "Shipped"}, **denoiser)
    registry = discover_models(folders=[tmp_path])
    widget = ModelPanel()
    qtbot.addWidget(widget)
    widget.set_registry(registry)
    assert widget.selected_entry().id == "shipped-denoiser"
    assert "Shipped (default)" in tree_groups(widget)["Denoising"]
    widget.select_model("nlm")  # a choice the user made survives a new listing
    widget.set_registry(discover_models(folders=[tmp_path]))
    assert widget.selected_entry().id == "nlm"


def test_self_ensemble_starts_as_each_cards_and_offers_the_engines_sizes(panel):
    # None: each model as its card says (one pass unless the card names more, as the default denoiser's x4)
    assert panel.self_ensemble() is None
    for size in (2, 4, 8, 1, None):
        panel.set_self_ensemble(size)
        assert panel.self_ensemble() == size
    with pytest.raises(ValueError, match="one of 1, 2, 4, 8"):
        panel.set_self_ensemble(3)
