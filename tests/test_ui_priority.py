"""The prompt widgets of mothlab.ui rely on Panel's private ``Syncable._priority_changes``: a
browser change named there is handled on the next tick, any other after ``Syncable._debounce``
(50 ms in Panel 1.9). These tests drive Panel's own change handler and fail if Panel stops
honouring the attribute, which would silently add the debounce to every browser step that
``mothlab bench app`` times."""

from unittest import mock

import panel as pn
import pytest

from mothlab.ui.common import PROMPT_CHANGES, LevelSlider, PromptFloatSlider, PromptPlayer


def _how_a_browser_change_is_handled(widget, attr="value"):
    """'now' if Panel runs a browser change of ``attr`` on the next tick, 'debounced' if it waits."""
    doc = mock.Mock()
    doc.session_context = True  # a served session, where Panel debounces
    with mock.patch.object(pn.state, "execute") as execute:
        widget._server_change(doc, "ref", None, attr, None, 1)
    widget._events.clear()
    pn.state._change_callbacks.pop(doc, None)
    if execute.called and not doc.add_timeout_callback.called:
        return "now"
    if doc.add_timeout_callback.called and not execute.called:
        assert doc.add_timeout_callback.call_args.args[1] == widget._debounce
        return "debounced"
    raise AssertionError("Panel's change handler did neither")


@pytest.mark.parametrize(
    "make",
    [
        lambda: PromptFloatSlider(start=0, end=1, value=0.5),
        lambda: PromptPlayer(start=0, end=10, value=0),
        lambda: LevelSlider(options={"0 %": 0, "50 %": 1, "90 %": 2}, value=0),
    ],
    ids=["PromptFloatSlider", "PromptPlayer", "LevelSlider"],
)
def test_prompt_widgets_skip_panels_debounce(make):
    widget = make()
    assert set(PROMPT_CHANGES) <= set(widget._priority_changes)
    for attr in PROMPT_CHANGES:
        assert _how_a_browser_change_is_handled(widget, attr) == "now", attr


def test_a_plain_panel_slider_is_still_debounced():
    # the reference: without the attribute Panel waits, so the test above can fail
    assert _how_a_browser_change_is_handled(pn.widgets.FloatSlider(start=0, end=1)) == "debounced"
