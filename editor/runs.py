"""Stored runs: what the page keeps of a finished run, the file it exports, reading such a file
back, and the session's history and A/B views of them. Plain data only.

A stored run is a dict: the trajectory view (`record`, see engine.views.run_view), the ranked
`candidates`, the row's `cells` and `text`, the `settings` as the page sent them (`settings_of`
reads them back, older runs' included), a `summary` line, the engine's `provenance` (the model's
weights hashes, the request as read, the package versions), an `id` (unique in the server) and a
`number`: its place in the browser session's runs, counted from 1 in each session (the history
shows #1, #2, ...). The exported JSON is that dict, less the id and the number, with a format
name and version; "load a run" checks a file against that shape before anything reads it.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from editor.limits import one_line
from engine.errors import ConfigError

FORMAT = "dlm-studio-run"
VERSION = 1
HISTORY = 20  # runs the session's history keeps (the oldest go first)
MAX_STEPS = 2000  # the most steps a loaded run may hold (the schedule's T)
MAX_POSITIONS = 512
_ids = itertools.count(1)

Word = Annotated[str, Field(max_length=200)]


class _Checked(BaseModel):
    """Values are read as their declared types (finite numbers only); unknown keys are dropped."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class FrameFile(_Checked):
    words: list[Word]
    confidence: list[float]
    top: list[list[tuple[Word, float]]] = []


class SampleFile(_Checked):
    row: int
    locked: list[bool] = Field(min_length=1, max_length=MAX_POSITIONS)
    frames: list[FrameFile] = Field(min_length=1, max_length=MAX_STEPS)
    projection: list[list[tuple[float, float]]]
    control_scores: dict[str, list[float | None]]


class RecordFile(_Checked):
    steps: int = Field(ge=1, le=MAX_STEPS)
    planned_steps: int | None = Field(None, ge=1, le=MAX_STEPS)  # more than `steps`: the run settled early
    stopped: bool = False
    t: list[int]
    alpha_bar: list[float]
    samples: list[SampleFile] = Field(min_length=1, max_length=64)
    seconds: float = 0.0
    denoiser_passes: int = 0
    classifier_passes: int = 0
    rows: int = 0

    @model_validator(mode="after")
    def lengths_agree(self) -> RecordFile:
        """Every per-step list has one entry per step, every per-position list one per position."""
        if len(self.t) != self.steps or len(self.alpha_bar) != self.steps:
            raise ValueError(f"t and alpha_bar need {self.steps} entries (one per step)")
        for i, sample in enumerate(self.samples):
            where, positions = f"samples[{i}]", len(sample.locked)
            if len(sample.frames) != self.steps:
                raise ValueError(f"{where} has {len(sample.frames)} frames for {self.steps} steps")
            for j, frame in enumerate(sample.frames):
                if len(frame.words) != positions or len(frame.confidence) != positions or len(frame.top) > positions:
                    raise ValueError(f"{where}.frames[{j}] needs {positions} words and confidences (one per position)")
            if sample.projection and (len(sample.projection) != self.steps or
                                      any(len(step) != positions for step in sample.projection)):
                raise ValueError(f"{where}.projection needs {self.steps} steps of {positions} points")
            if any(len(scores) != self.steps for scores in sample.control_scores.values()):
                raise ValueError(f"{where}.control_scores need one score per step")
        return self


class CandidateFile(_Checked):
    text: str = Field(max_length=1 << 14)
    words: list[Word] = Field(max_length=MAX_POSITIONS)
    judge_ppl: float | None
    checks: dict[str, bool]
    control_scores: dict[str, float] = {}


class CellFile(_Checked):
    word: Word
    locked: bool


class RunFile(_Checked):
    format: Literal["dlm-studio-run"]
    version: Literal[1]
    record: RecordFile
    candidates: list[CandidateFile] = Field(min_length=1, max_length=64)
    cells: list[CellFile] = Field(max_length=MAX_POSITIONS)
    text: str = Field(max_length=1 << 14)
    settings: dict[str, Any] = {}
    summary: str = Field("", max_length=1000)
    provenance: dict[str, Any] = {}
    label: str = Field("", max_length=1000)

    @field_validator("provenance")
    @classmethod
    def no_local_path(cls, provenance: dict[str, Any]) -> dict[str, Any]:
        """An export made before runs named their model recorded the model's folder as a path on
        the machine that made it: only the folder's name is kept (as a run records it now)."""
        model = provenance.get("model")
        if not isinstance(model, dict) or "directory" not in model:
            return provenance
        folder = re.split(r"[\\/]", str(model["directory"]).rstrip("\\/"))[-1]
        named = {"name": folder, **{k: v for k, v in model.items() if k != "directory"}}
        return {**provenance, "model": named}


def next_number(history: list[dict] | None) -> int:
    """The number of a session's next run: one more than its history's newest (the history keeps
    the newest runs), so each browser session numbers its runs #1, #2, ..."""
    return max((run.get("number", 0) for run in history or []), default=0) + 1


def stored(record: dict, candidates: list[dict], *, number: int, cells: list[dict], text: str, settings: dict,
           summary: str, provenance: dict) -> dict:
    """A finished run as the page keeps it (and exports it), with a new id, its number in the
    session (see `next_number`) and a history label."""
    run = {"id": next(_ids), "number": number, "record": record, "candidates": candidates, "cells": cells, "text": text,
           "settings": settings, "summary": summary, "provenance": provenance}
    return run | {"label": label(run)}


def settings_of(run: dict) -> dict:
    """The settings that made a run, as the page would send them again. A run made before the
    guidance panel's "measured setting per control" (`measured`) steered with its sliders'
    values: it says so with `measured` off."""
    settings = dict(run.get("settings", {}))
    if "measured" not in settings and any(name in settings for name in ("strength", "fluency", "reads")):
        settings["measured"] = False
    return settings


def label(run: dict) -> str:
    """One line naming a run in the history: when, its best text, and its seed and steps."""
    settings = run.get("settings", {})
    best = run["candidates"][0]["text"] if run["candidates"] else ""
    vary = settings.get("vary_strength")
    how = f"vary {vary:g}" if isinstance(vary, int | float) and settings.get("varied") else "generate"
    return one_line(f"{time.strftime('%H:%M:%S')} · {how} · seed {settings.get('seed', '?')} · "
                    f"{run['record']['steps']} steps · {best[:60]}")


def export_text(run: dict) -> str:
    """The run as the JSON the download button serves (and "load a run" reads)."""
    return json.dumps({"format": FORMAT, "version": VERSION,
                       **{k: v for k, v in run.items() if k not in ("id", "number")}})


def read_run(text: str | bytes, number: int) -> dict:
    """A run from an exported file, checked against its shape, with a new id and the number it
    takes in this session (see `next_number`); a ConfigError says what is wrong."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"this file is not JSON ({one_line(str(exc))[:80]}): load a trajectory JSON exported "
                          f"by DLM Studio") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError("this JSON is not a DLM Studio run (no \"format\": \"dlm-studio-run\"): load a "
                          "trajectory JSON exported by the editor")
    try:
        checked = RunFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ConfigError(one_line(f"this run file is damaged at {where}: {first['msg']}")) from None
    run = json.loads(checked.model_dump_json(exclude={"format", "version"}))  # as read: plain JSON values
    loaded = "loaded · " + (run.get("label") or label(run)).removeprefix("loaded · ")
    return run | {"id": next(_ids), "number": number, "label": loaded}


def remembered(history: list[dict] | None, run: dict) -> list[dict]:
    """The history with `run` added last (at most HISTORY runs)."""
    return [*(history or []), run][-HISTORY:]


def history_choices(history: list[dict] | None) -> list[tuple[str, int]]:
    """The history list's entries, newest first: (label, the run's id)."""
    return [(f"#{run.get('number', '?')} {run['label']}", run["id"]) for run in reversed(history or [])]


def step_of(run: dict, fraction: float) -> int:
    """The step of a run at a fraction of its way (0 = first step, 1 = last): two runs of different
    step counts scrub together."""
    last = run["record"]["steps"] - 1
    return max(0, min(last, round(fraction * last)))


def settings_changed(a: dict, b: dict) -> list[str]:
    """The settings whose values differ between two runs, as "name a → b"."""
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    return [f"{k} {a.get(k)!r} → {b.get(k)!r}" for k in keys]


def ab_rows(a: dict, b: dict) -> list[list]:
    """The A/B table: each run's best result, its scores and checks, its cost, and what differs."""
    differs = " · ".join(settings_changed(settings_of(a), settings_of(b))) or "same settings"
    rows = []
    for name, run in (("A (pinned)", a), ("B (this run)", b)):
        best = run["candidates"][0]
        record = run["record"]
        scores = " · ".join(f"{k} {v:.0%}" for k, v in best.get("control_scores", {}).items()) or "–"
        checks = " · ".join(("✓ " if ok else "✗ ") + k for k, ok in best["checks"].items())
        passes = f"{record.get('denoiser_passes', 0)} denoiser + {record.get('classifier_passes', 0)} guide"
        rows.append([name, best["text"], round(best["judge_ppl"], 2) if best.get("judge_ppl") else None, scores,
                     checks, round(record.get("seconds", 0.0), 2), passes, differs])
    return rows
