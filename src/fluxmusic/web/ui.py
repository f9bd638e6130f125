"""The gradio UI: text-to-music and the three edits, with the sampler's progress, results and history.

Every button builds the same fields the HTTP API takes and goes through the same checks and the same
queue (:mod:`fluxmusic.web.tasks`, :class:`~fluxmusic.web.service.ModelService`); the UI adds only the
widgets. The generate button is also the named endpoint ``/generate`` for ``gradio_client``.
"""

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxmusic.web.errors import ApiError, as_api_error
from fluxmusic.web.results import HISTORY_HEADERS, ResultFiles, ResultStore
from fluxmusic.web.tasks import build_task, decode_upload

if TYPE_CHECKING:
    import gradio as gr

    from fluxmusic.web.service import ModelService

__all__ = ["build_ui", "example_prompts"]

BUNDLED_EXAMPLES = [
    "solo piano, a calm piece at 90 BPM",
    "a lively Irish reel on solo fiddle, 132 BPM",
    "solo church organ, a slow chorale at 66 BPM",
    "solo flute, a gentle melody at 100 BPM",
    "nylon string guitar, a fast piece",
]
RELEASED_EXAMPLES = [
    "a calm piano piece with soft strings",
    "an upbeat electronic dance track with a punchy kick",
    "a slow blues on an electric guitar",
    "an orchestral film score, epic and dramatic",
]


def example_prompts(service: "ModelService") -> list[str]:
    """Prompts that suit the loaded model: the bundled model knows solo instruments and tempi."""
    bundled = service.model == "bundled" or service.pipe.transformer.config.has_tempo_input
    return BUNDLED_EXAMPLES if bundled else RELEASED_EXAMPLES


def _whole(value: Any) -> Any:
    """A widget's number as an integer where it is one (sliders and number boxes give floats)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fields(prompt: str, negative: str, steps: Any, guidance: Any, sampler: str, seed: Any, bpm: Any) -> dict:
    given = {
        "prompt": prompt,
        "negative_prompt": negative,
        "steps": _whole(steps),
        "guidance": guidance,
        "sampler": sampler,
        "seed": None if seed is None or seed < 0 else _whole(seed),
        "bpm": bpm if bpm else None,  # 0 (the box's empty value): read from the prompt
    }
    return {k: v for k, v in given.items() if v is not None and v != ""}


class _Runner:
    """Runs one UI request through the service and turns the result into the widgets' values."""

    def __init__(self, service: "ModelService", store: ResultStore) -> None:
        self.service, self.store = service, store

    def __call__(
        self, operation: str, fields: dict, upload: str | None, history: list, progress: "gr.Progress"
    ) -> tuple:
        import gradio as gr

        try:
            audio = None
            if operation != "text-to-music":
                if not upload:
                    raise ApiError(
                        422, "choose an input audio file first (or press 'Use as input' on a result)"
                    )
                audio = decode_upload(self.service, Path(upload).read_bytes())
            task, _ = build_task(self.service, operation, fields, audio)
            job = self.service.submit(task)
            progress(0.0, desc="waiting in the queue")
            while True:
                try:
                    result = job.future.result(timeout=0.1)
                    break
                except TimeoutError:
                    p = job.progress
                    if p.steps:
                        window = f"window {p.window}, " if p.window > 1 else ""
                        progress(p.fraction, desc=f"{window}step {p.step}/{p.steps}")
        except Exception as err:  # noqa: BLE001 - every failure is shown as one line
            raise gr.Error(as_api_error(err).message) from None
        files = self.store.save(result)
        history = [*history, files]
        return (*self.show(files), [h.row() for h in reversed(history)], history)

    @staticmethod
    def show(files: ResultFiles | None) -> tuple:
        """The result widgets' values: audio, downloads, spectrogram, settings, the shown result."""
        if files is None:
            return None, None, None, None, None
        return files.wav, [files.wav, files.flac], files.spectrogram, files.settings, files


@dataclass(frozen=True)
class _Tab:
    """One tab's button: its operation, its endpoint, its own inputs and the request fields they give."""

    operation: str
    api_name: str
    inputs: tuple[str, ...]
    """The endpoint's names of the tab's inputs after the common ones; an edit's first is its input audio."""
    fields: Callable[..., dict]
    """The request fields from those inputs (the input audio aside)."""


_COMMON_INPUTS = ("prompt", "negative_prompt", "steps", "guidance", "sampler", "seed", "bpm")
_TABS = (
    _Tab("text-to-music", "generate", ("duration",), lambda duration: {"duration": duration}),
    _Tab("variation", "variation", ("audio", "strength"), lambda strength: {"strength": strength}),
    _Tab("inpaint", "inpaint", ("audio", "start", "end"), lambda start, end: {"regions": [[start, end]]}),
    _Tab("continuation", "continuation", ("audio", "duration"), lambda duration: {"duration": duration}),
)


def _handler(run: _Runner, tab: _Tab) -> Callable[..., tuple]:
    """The click handler of ``tab``: the common inputs, the tab's own, the history -> the result widgets.

    gradio reads a handler's signature: its parameter names are the endpoint's (``client.view_api()``),
    and the parameter that defaults to a ``gr.Progress`` gets the progress tracker. The handler is given
    the signature a hand-written one would have; it has no docstring, as that would be the endpoint's
    description.
    """
    import gradio as gr

    edit = tab.operation != "text-to-music"

    def handle(*values: Any) -> tuple:
        common, own = values[: len(_COMMON_INPUTS)], list(values[len(_COMMON_INPUTS) : -2])
        audio = own.pop(0) if edit else None
        fields = {**_fields(*common), **tab.fields(*own)}
        return run(tab.operation, fields, audio, values[-2], values[-1])

    named = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(name, named) for name in (*_COMMON_INPUTS, *tab.inputs, "hist")]
    progress = inspect.Parameter("progress", named, default=gr.Progress())
    handle.__signature__ = inspect.Signature([*params, progress])
    return handle


def _input_audio(operation: str, player: "gr.WaveformOptions") -> "gr.Audio":
    """An edit tab's input audio (an upload, or a result's 'Use as input')."""
    import gradio as gr

    return gr.Audio(
        type="filepath",
        sources=["upload"],
        label="Input audio",
        elem_id=f"{operation}-input",
        waveform_options=player,
    )


def build_ui(service: "ModelService") -> "gr.Blocks":
    """The gradio Blocks of the server (mounted at ``/`` by :func:`fluxmusic.web.app.create_app`)."""
    import gradio as gr

    desc = service.describe()
    defaults = desc["defaults"]
    run = _Runner(service, ResultStore(service.workdir / "results"))
    longest = float(desc["max_duration"])
    player = gr.WaveformOptions(show_recording_waveform=False)  # a plain <audio> player with its source
    with gr.Blocks(title="fluxmusic", analytics_enabled=False) as ui:
        history = gr.State([])
        shown = gr.State(None)
        gr.Markdown(
            f"## fluxmusic\nModel **{desc['name']}** ({desc['id']}), {desc['sample_rate']} Hz. One generation"
            f" runs at a time; up to {service.limits.queue_size} wait."
        )
        prompt = gr.Textbox(label="Prompt", lines=2, elem_id="prompt", placeholder="a calm piano piece")
        gr.Examples(
            examples=[[p] for p in example_prompts(service)], inputs=[prompt], label="Example prompts"
        )
        negative = gr.Textbox(label="Negative prompt", value=defaults.get("negative_prompt") or "", lines=1)
        with gr.Row():
            steps = gr.Slider(1, service.limits.max_steps, value=defaults["steps"], step=1, label="Steps")
            guidance = gr.Slider(0.0, 15.0, value=defaults["guidance"], step=0.05, label="Guidance")
            sampler = gr.Dropdown(desc["samplers"], value=defaults["sampler"], label="Sampler")
        with gr.Row():
            seed = gr.Number(value=-1, precision=0, label="Seed (-1: random)", elem_id="seed")
            dice = gr.Button("Roll the dice", size="sm", elem_id="dice")
            bpm = gr.Number(
                value=0,
                label="BPM (0: read from the prompt)",
                visible=desc["tempo_input"],
                elem_id="bpm",
            )
        common = [prompt, negative, steps, guidance, sampler, seed, bpm]
        with gr.Tabs():
            with gr.Tab("Text to music"):
                duration = gr.Slider(
                    0.1,
                    longest,
                    value=min(desc["default_duration"], longest),
                    step=0.01,
                    label="Duration (s)",
                )
                generate = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Tab("Variation"):
                vary_in = _input_audio("variation", player)
                strength = gr.Slider(0.05, 1.0, value=0.5, step=0.05, label="Strength (1 = text-to-music)")
                vary = gr.Button("Make a variation", variant="primary")
            with gr.Tab("Inpainting"):
                inpaint_in = _input_audio("inpaint", player)
                with gr.Row():
                    start = gr.Number(value=1.0, label="Region start (s)")
                    end = gr.Number(value=2.0, label="Region end (s)")
                inpaint = gr.Button("Inpaint the region", variant="primary")
            with gr.Tab("Continuation"):
                continue_in = _input_audio("continuation", player)
                total = gr.Number(value=min(2 * desc["default_duration"], longest), label="Total length (s)")
                extend = gr.Button("Continue", variant="primary")
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(
                    label="Result",
                    type="filepath",
                    interactive=False,
                    elem_id="result-audio",
                    waveform_options=player,
                )
                downloads = gr.File(
                    label="Download (wav, flac)", file_count="multiple", elem_id="result-files"
                )
                use = gr.Button("Use as input", elem_id="use-result")
            with gr.Column():
                picture = gr.Image(
                    label="Spectrogram", type="filepath", interactive=False, elem_id="spectrogram"
                )
                settings = gr.JSON(label="Resolved settings (sidecar)", elem_id="result-settings")
        with gr.Accordion("History of this session (select a row)", open=True):
            table = gr.Dataframe(headers=HISTORY_HEADERS, interactive=False, elem_id="history")
            with gr.Row():
                with gr.Column():
                    past_audio = gr.Audio(
                        label="Selected result", type="filepath", interactive=False, waveform_options=player
                    )
                    past_downloads = gr.File(label="Download", file_count="multiple")
                    past_use = gr.Button("Use as input")
                with gr.Column():
                    past_picture = gr.Image(label="Spectrogram", type="filepath", interactive=False)
                    past_settings = gr.JSON(label="Resolved settings")
                    past_shown = gr.State(None)

        result = [audio, downloads, picture, settings, shown, table, history]
        edit_inputs = [vary_in, inpaint_in, continue_in]

        def on_select(hist: list, evt: gr.SelectData) -> tuple:
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            chosen = list(reversed(hist))[row] if 0 <= row < len(hist) else None
            return run.show(chosen)[:4] + (chosen,)

        def use_as_input(files: ResultFiles | None) -> tuple:
            if files is None:
                raise gr.Error("generate something first")
            return files.wav, files.wav, files.wav

        own_inputs = ([duration], [vary_in, strength], [inpaint_in, start, end], [continue_in, total])
        for tab, button, own in zip(_TABS, (generate, vary, inpaint, extend), own_inputs, strict=True):
            button.click(_handler(run, tab), [*common, *own, history], result, api_name=tab.api_name)
        dice.click(lambda: random.randrange(2**31 - 1), None, seed, api_name=False)
        use.click(use_as_input, shown, edit_inputs, api_name=False)
        past_use.click(use_as_input, past_shown, edit_inputs, api_name=False)
        table.select(
            on_select,
            history,
            [past_audio, past_downloads, past_picture, past_settings, past_shown],
            api_name=False,
        )
    return ui
