"""The prompt widgets of mothlab.ui rely on Panel's private ``Syncable._priority_changes`` (a
browser change named there is handled on the next tick instead of after the 50 ms debounce).
These tests fail if Panel stops honouring it, so the browser round trips of ``mothlab bench app``
would silently lose ~35 ms a step."""

import inspect

import panel as pn

from mothlab.ui.common import PROMPT_CHANGES, LevelSlider, PromptFloatSlider, PromptPlayer


def test_panel_still_schedules_priority_changes_without_debounce():
    src = inspect.getsource(pn.reactive.Syncable._server_change)
    assert "_priority_changes" in src, "Panel no longer reads _priority_changes"
    assert "add_timeout_callback" in src and "_debounce" in src
    # the priority branch runs the change at once, the other waits for the debounce
    assert src.index("_priority_changes") < src.index("add_timeout_callback")
    assert "schedule=True" in src


def test_prompt_widgets_name_their_value_changes():
    for cls in (PromptFloatSlider, PromptPlayer, LevelSlider):
        assert set(PROMPT_CHANGES) <= set(cls._priority_changes), cls
        assert issubclass(cls, pn.reactive.Syncable)
