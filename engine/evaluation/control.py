"""`python -m engine.evaluate control`: how often guided samples meet their targets, and at what cost.

    python -m engine.evaluate control --kind pos --targets docs/targets/pos.jsonl \\
        --n-targets 50 --samples-per-target 1 --json [--no-guidance] [--method diffusion|fudge|ar]

Each target gets S samples. `success` is the task's oracle metric (POS accuracy, attachment F1,
span found, value mentioned, exact length; for compose the mean over its controls), averaged
over a target's samples and then over all targets read, a target that could not be used counting
as a failure. A line that cannot be used (malformed, or asking what this model cannot do: a value
its classifier never saw, a length it cannot write) stops nothing: `unusable` lists each with its
line and reason, and `coverage` is the share of targets used. `fluency_ppl` is the judge's (or
--fluency-judge's)
perplexity of all samples. With --no-guidance nothing steers or constrains the samples (free
text, one draw per sample): chance level. With --candidates K every sample kept is the best of K drawn, ranked as the
editor ranks them (independent checks, the control's own oracle, then the judge): what a user
gets, not the paper's protocol of one draw per sample. --method fudge writes left to right with
the autoregressive LM, steered by FUDGE's future discriminators, and --method ar without control:
the same targets, oracles, judge and cost figures (passes per network, seconds per sample).

--template-from FILE asks each target on a template, as a writer uses the editor: line n of FILE
(any line with a `words_` list: the POS, spans and compose files) gives target n's sentence, blanked
but for 2 to 4 of its words (and a closing punctuation mark), never a word the target's oracle
looks for. --template TEXT asks every target on that one template instead. `success_by_field`
splits semantic success by the field asked.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import mean, quantiles

from engine.autoregressive.writer import WriteOptions
from engine.cli import option
from engine.controls import KINDS
from engine.controls.base import NOT_WORDS, json_value, word_list
from engine.controls.guidance import GuidanceOptions
from engine.controls.semantic import STEER_BY
from engine.controls.targets import FILE_KINDS, TargetLine, Unusable, file_lines, scan_targets
from engine.diffusion.checkpoint import read_json
from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError, TargetError
from engine.pipeline import Pipeline
from engine.request import METHODS, Prompt, Request
from engine.scoring.judge import Judge
from engine.text.tokenizer import Tokenizer

LOCKED_WORDS = (2, 4)  # a template made from a target's sentence keeps this many of its words (at random)


@dataclass
class ControlOptions:
    """`evaluate control`'s own flags (the model, sampling, guidance, writing, weights and seed are shared)."""

    kind: str = field(metadata={"choices": FILE_KINDS, "help": "the kind of control the target file holds"})
    targets: str = field(metadata={"help": "target file in the format of the kind (see engine.controls)"})
    n_targets: int = option(50, "use the first K targets of the file")
    template_from: str | None = option(None, "ask each target on a template: line n of this file (a POS, spans "
                                             "or compose file) gives target n's sentence, blanked but for 2 to 4 "
                                             "words (never one the target asks for)")
    samples_per_target: int = option(1, "samples kept per target")
    candidates: int | None = option(None, "draw this many per sample kept, the best kept by the pipeline's ranking "
                                          "(checks, the control's oracle, then the judge), as the editor and "
                                          "engine.generate do (default: the controls' own; 1 is the paper's protocol)")
    template: str | None = option(None, 'ask every target on this template ("_ _ _ is a _ _ near _ _ .")')
    steer_meaning: str | None = option(None, "steer every semantic value by its classifier label, the word posterior "
                                             "towards its words, or both (default: each field's measured way)",
                                       choices=STEER_BY)
    guidance: bool = option(True, "steer with the controls (--no-guidance: free samples, no control at all: "
                                  "chance level)")
    batch: int = option(32, "rows sampled at once")
    method: str = option("diffusion", "diffusion; fudge: left to right, steered by FUDGE's discriminators; ar: "
                                      "left to right, no control", choices=METHODS)

    def __post_init__(self) -> None:
        if min(self.n_targets, self.samples_per_target, self.batch,
               1 if self.candidates is None else self.candidates) < 1:
            raise EngineError("--n-targets, --samples-per-target, --candidates and --batch must be at least 1")
        if self.template and self.template_from:
            raise EngineError("--template and --template-from both give the template: choose one")


def evaluate_control(pipe: Pipeline, options: ControlOptions, sampling: SampleOptions, *, guidance: GuidanceOptions,
                     weights: dict[str, float], writing: WriteOptions, seed: int = 0,
                     fluency_judge: str | None = None) -> dict:
    """The report of `python -m engine.evaluate control` (see the module docstring); `fluency_judge`: the
    directory of the judge that scores fluency (None: the model's own, if it has one)."""
    spt = options.samples_per_target
    judge = Judge.other_or(fluency_judge, pipe.judge, pipe.tokenizer)
    read, unusable = scan_targets(options.kind, options.targets, limit=options.n_targets)
    if options.steer_meaning:  # every meaning target steered one way, for measuring the ways against each other
        read = [replace(line, targets=tuple(replace(t, steer=options.steer_meaning) if hasattr(t, "steer") else t
                                            for t in line.targets)) for line in read]
    sampling.record_latents = False
    method = "ar" if not options.guidance and options.method == "fudge" else options.method
    prompts = usable_prompts(pipe, read, unusable, options, sampling=sampling, method=method, seed=seed)
    lines = [line for line in read if line.line in prompts]
    total = len(lines) + len(unusable)
    if not lines:
        raise TargetError(f"{options.targets}: none of its {total} targets can be used, e.g. line "
                          f"{unusable[0].line}: {unusable[0].reason}")
    requests = [Request(prompts=(prompts[line.line],), samples=spt, candidates=options.candidates,
                        steer=options.guidance, method=method) for line in lines]
    drawn = max(request.drawn(request.prompts[0]) for request in requests)
    per_batch = max(1, options.batch // (spt * drawn))
    samples, per_target, by_control, by_field, passes = [], [], {}, {}, {}
    seconds = batches = 0
    for first in range(0, len(lines), per_batch):
        batch = lines[first:first + per_batch]
        result = pipe.run(Request(prompts=tuple(prompts[line.line] for line in batch), samples=spt,
                                  candidates=options.candidates, seed=seed + first * spt, sampling=sampling,
                                  guidance=guidance, weights=weights, steer=options.guidance, method=method,
                                  writing=writing))
        seconds += result.cost.seconds
        for network, n in result.cost.passes().items():
            passes[network] = passes.get(network, 0) + n
        batches += 1
        for line, group in zip(batch, result.ranked, strict=True):
            per_target.append(mean(mean(c.control_scores.values()) for c in group))
            for target in line.targets:
                if hasattr(target, "field"):
                    by_field.setdefault(target.field, []).append(per_target[-1])
            for c in group:
                template = prompts[line.line].template
                samples.append({"target": line.raw, **({"template": template} if template else {}),
                                "text": c.text, "words": c.words, "scores": c.control_scores})
                for name, value in c.control_scores.items():
                    by_control.setdefault(name, []).append(value)
    report = {
        "kind": options.kind, "method": method, "guidance": method != "ar" and options.guidance,
        "success": round(sum(per_target) / total, 4),
        "coverage": round(len(lines) / total, 4),
        "unusable": [{"line": u.line, "reason": u.reason} for u in sorted(unusable, key=lambda u: u.line)],
        "fluency_ppl": round(judge.perplexity([s.pop("words") for s in samples]), 2) if judge else None,
        "fluency_judge": str(fluency_judge or pipe.directory),
        "seconds_per_sample": round(seconds / len(samples), 4),
        "passes_per_sample": round(sum(passes.values()) / batches, 1),
        **{f"{network}_passes_per_sample": round(n / batches, 1) for network, n in passes.items()},
        "spread": spread(per_target, unusable=len(unusable)),
        "n_targets": total, "n_used": len(lines), "samples_per_target": spt, "candidates": drawn,
        "settings": {**method_settings(method, sampling, guidance, writing, lines), "weights": weights,
                     "batch": options.batch, "seed": seed, "targets": str(options.targets),
                     "template_from": options.template_from and str(options.template_from),
                     "template": options.template,
                     "model": pipe.directory.name},
        "samples": samples,
    }
    # success_by_control and success_by_field below: over the targets used
    if by_field:
        report["success_by_field"] = {k: {"success": round(mean(v), 4), "targets": len(v)}
                                      for k, v in sorted(by_field.items())}
    if len(by_control) > 1:
        report["success_by_control"] = {k: round(mean(v), 4) for k, v in by_control.items()}
    return report


def usable_prompts(pipe: Pipeline, read: list[TargetLine], unusable: list[Unusable], options: ControlOptions, *,
                   sampling: SampleOptions, method: str, seed: int) -> dict[int, Prompt]:
    """{line: its prompt} of the target lines the model can serve (with --template-from, on a
    template from that line's sentence); each line it refuses (a value its classifier lacks, a
    length it cannot write) joins `unusable` with the reason."""
    sentences = sentences_by_line(options.template_from) if options.template_from else None
    prompts = {}
    for line in read:
        try:
            prompt = Prompt(template=options.template, targets=line.targets)
            if sentences is not None:
                if line.line not in sentences:
                    raise TargetError(f"{options.template_from} has no sentence (words_) on line {line.line}")
                prompt = Prompt(template=blanked(sentences[line.line], line.targets, pipe.tokenizer,
                                                 random.Random(seed * 100_003 + line.line)),
                                targets=line.targets)
            pipe.check(Request(prompts=(prompt,), samples=1, sampling=sampling, steer=options.guidance,
                               method=method))
            prompts[line.line] = prompt
        except EngineError as exc:
            unusable.append(Unusable(line.line, str(exc)))
    return prompts


def sentences_by_line(path: Path | str) -> dict[int, list[str]]:
    """{line number: the sentence} of a target file whose lines hold a `words_` list (START, END and
    the newline entry dropped); lines without one are left out."""
    path = Path(path)
    if not path.is_file():
        raise TargetError(f"template file not found: {path}")
    sentences = {}
    with path.open("rb") as file:
        for number, text in file_lines(file):
            if isinstance(text, str) and text.strip().startswith("{"):
                raw = json_value(text)
                words = [w for w in word_list(raw.get("words_")) if w not in NOT_WORDS]
                if words:
                    sentences[number] = words
    return sentences


def blanked(words: Sequence[str], targets: Sequence, tokenizer: Tokenizer, rng: random.Random) -> str:
    """`words` as a template that keeps 2 to 4 of them (chosen by `rng`, each known to the model and not
    one the targets' oracles look for) and a closing punctuation mark, with `_` for every other word."""
    asked = {w.lower() for target in targets for w in getattr(target, "oracle_words", ())}
    last = len(words) - 1 if words[-1] in (".", "!", "?") else None
    open_ = [i for i, w in enumerate(words) if i != last and w in tokenizer and w.lower() not in asked
             and any(ch.isalnum() for ch in w)]
    kept = set(rng.sample(open_, min(len(open_), rng.randint(*LOCKED_WORDS))))
    if last is not None:
        kept.add(last)
    return " ".join(w if i in kept else "_" for i, w in enumerate(words))


def rescore(reports: list[str], judge_dir: str) -> dict:
    """{report: the corpus perplexity of its samples under the judge in `judge_dir`}."""
    judge = Judge(Path(judge_dir), Tokenizer.load(Path(judge_dir) / "vocab.json"))
    scores = {}
    for report in reports:
        samples = read_json(Path(report), what="control report").get("samples")
        if not isinstance(samples, list) or not samples:
            raise EngineError(f"{report} holds no samples (write it with engine.evaluate control)")
        scores[report] = round(judge.perplexity([sample["text"].split() for sample in samples]), 2)
    return {"judge": judge_dir, "fluency_ppl": scores}


def method_settings(method: str, sampling: SampleOptions, guidance: GuidanceOptions, writing: WriteOptions,
                    lines: list[TargetLine]) -> dict:
    """The options that shaped the samples of `method`."""
    if method != "diffusion":
        return vars(writing)
    settings = {**vars(sampling), **vars(guidance.resolved(steered_kinds(lines)))}
    settings.pop("record_latents")
    return settings


def spread(per_target: list[float], unusable: int) -> dict:
    """How success varies over targets (each target's mean over its samples, an unusable one 0):
    the quartiles, the extremes, and the share of targets fully met."""
    scores = sorted(per_target + [0.0] * unusable)
    q1, median, q3 = quantiles(scores, n=4, method="inclusive") if len(scores) > 1 else scores * 3
    return {"min": round(scores[0], 4), "q1": round(q1, 4), "median": round(median, 4), "q3": round(q3, 4),
            "max": round(scores[-1], 4), "fully_met": round(sum(s == 1.0 for s in scores) / len(scores), 4)}


def steered_kinds(lines: list[TargetLine]) -> list[str]:
    """The kinds of control these target lines steer with, in registry order."""
    named = {target.kind for line in lines for target in line.targets}
    return [name for name, kind in KINDS.items() if name in named and kind.steers]
