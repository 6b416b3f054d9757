"""The guided tour in the app: a scenario (core/studies/presets.py) sets its page's widgets, shows its
precomputed results at once, clearly labelled, with Re-run live, and says what to look at.

A scenario arrives as ``?scenario=<id>`` (the tour page's buttons, a bookmarked link), read by
``ui.share.settings`` before the page's widgets are drawn. It stays active while the page's
settings are the scenario's; change one and the page is the visitor's own again.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import precompute
from core.settings import params as P
from core.settings.params import Param, Problem
from core.studies.experiments import EXPERIMENTS, SETUPS
from core.studies.presets import BY_ID, PRESETS, Preset
from ui import controls, runner
from ui.i18n import t

TOUR_PAGE = "app_pages/tour.py"
SINGLE_RUN = tuple(key for key, e in EXPERIMENTS.items() if e.single_run)  # pages whose outcome is one paired run


def page_path(page: str) -> str:
    return f"app_pages/{page}.py"


def _key(page: str, what: str) -> str:
    return f"_tour.{page}.{what}"


def page_values(preset: Preset, params: list[Param]) -> dict[str, Any]:
    """Every setting of the scenario's page, by URL name: the page's defaults, the scenario's config
    as the form shows it, its other settings and its view."""
    values = {p.name: p.default for p in params}
    values.update(controls.form_values(preset.config, SETUPS[preset.page].fields))
    values.update(preset.settings)
    values.update(preset.view)
    return values


@st.cache_data(max_entries=2 * len(PRESETS), show_spinner=False)
def _stored(preset_id: str, index_stamp: float) -> precompute.Stored | None:
    """A scenario's precomputed frames, read once per process (and again if the files change)."""
    return precompute.load(BY_ID[preset_id])


def stored(preset: Preset) -> precompute.Stored | None:
    path = precompute.ROOT / precompute.INDEX
    return _stored(preset.id, path.stat().st_mtime if path.exists() else 0.0)


def warm():
    """Read every scenario's stored results now (the tour page does, while people read it), so the
    click on a scenario finds them in memory."""
    for preset in PRESETS:
        stored(preset)


def precomputed_outcome(preset: Preset, data: precompute.Stored) -> runner.Outcome:
    return runner.Outcome(
        lambda: t(
            "Precomputed · {title} · {settings}", title=t(preset.title), settings=controls.describe(preset.config)
        ),
        data.frames,
        data.seconds,
        config=preset.config if preset.page in SINGLE_RUN else None,
    )


def arrive(page: str, scenario: str, params: list[Param]) -> tuple[dict[str, Any], Problem | None]:
    """A link asks for ``scenario``: the settings to give the page's widgets (none if the id is
    unknown: a Problem says so) and, as the page's outcome, the precomputed results, or a live run
    if there are none. A scenario of another page opens that page."""
    preset = BY_ID.get(scenario)
    if preset is None:
        ids = ", ".join(BY_ID)
        return {}, Problem(
            "scenario", scenario, f"`scenario={scenario}` is not a scenario of the tour (its scenarios: {ids})"
        )
    if preset.page != page:
        st.switch_page(page_path(preset.page), query_params={"scenario": preset.id})
    data = stored(preset)
    if data is not None:
        outcome = precomputed_outcome(preset, data)
        st.session_state[f"{page}.outcome"] = outcome
        st.session_state[_key(page, "shown")] = outcome
    else:
        st.session_state[controls.run_request_key(page)] = True  # no stored results: run it live
    st.session_state[_key(page, "scenario")] = preset.id
    return page_values(preset, params), None


def active(page: str, current: dict[str, Any], params: list[Param]) -> str | None:
    """The scenario the page shows, if its settings are still exactly the scenario's."""
    preset = BY_ID.get(st.session_state.get(_key(page, "scenario"), ""))
    if preset is None:
        return None
    same = P.write(current, params, full=True) == P.write(page_values(preset, params), params, full=True)
    return preset.id if same else None


def showing_precomputed(page: str) -> bool:
    shown = st.session_state.get(_key(page, "shown"))
    return shown is not None and st.session_state.get(f"{page}.outcome") is shown


def _request_go(page: str, preset_id: str):
    st.session_state[_key(page, "go")] = preset_id  # acted on at the top of the run the click causes


def _request_run(page: str):
    st.session_state[controls.run_request_key(page)] = True


def go(preset: Preset, here: str | None = None):
    """Open ``preset``'s page with it; on that page already, rerun with the new link (switch_page
    to the current page would keep the old one)."""
    if preset.page == here:
        st.query_params.from_dict({"scenario": preset.id})
        st.rerun()
    st.switch_page(page_path(preset.page), query_params={"scenario": preset.id})


def banner(page: str, current: dict[str, Any], params: list[Param]):
    """The active scenario: its place in the tour, what to look at, Re-run live, and the next one."""
    if target := st.session_state.pop(_key(page, "go"), None):  # Next was pressed
        go(BY_ID[target], here=page)
    scenario = active(page, current, params)
    if scenario is None:
        return
    i = [p.id for p in PRESETS].index(scenario)
    preset = PRESETS[i]
    with st.container(border=True, key=_key(page, "banner")):
        st.markdown(
            t("**Guided tour {i}/{n} · {title}**", i=i + 1, n=len(PRESETS), title=t(preset.title))
            + f"  \n{t(preset.look)}"
        )
        cols = st.columns([4, 2, 3], vertical_alignment="center")
        # Drawn before this run's job: if Run or Re-run live was pressed, the results below are live.
        rerunning = st.session_state.get(controls.run_request_key(page)) or st.session_state.get(f"{page}.run")
        if showing_precomputed(page) and not rerunning:
            seconds = st.session_state[f"{page}.outcome"].seconds
            cols[0].caption(
                t(
                    ":material/inventory_2: **Precomputed results**, shown at once (they took {seconds:.0f} s to "
                    "train with `python -m core.precompute`). Re-run live to train them here with the same settings: "
                    "on the machine that stored them the numbers are identical; on another processor they are equal "
                    "within float noise (the last digits of some figures differ).",
                    seconds=seconds,
                )
            )
            cols[1].button(
                t("Re-run live"),
                key=_key(page, "rerun"),
                icon=":material/play_arrow:",
                on_click=_request_run,
                args=(page,),
            )
        if i + 1 < len(PRESETS):
            nxt = PRESETS[i + 1]
            cols[2].button(
                t("Next: {title}", title=t(nxt.title)),
                key=_key(page, "next"),
                icon=":material/arrow_forward:",
                on_click=_request_go,
                args=(page, nxt.id),
            )
        else:
            cols[2].page_link(TOUR_PAGE, label=t("Back to the tour"), icon=":material/map:")
