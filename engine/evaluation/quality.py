"""`python -m engine.evaluate quality`: free samples and infilling, scored with numbers.

Free samples and infills of n valid sentences (evenly spread over the file), with four blank
patterns (BLANK_PATTERNS: the middle third, the first words, the last words before the final
punctuation, three scattered single words), are scored by the fluency judge's perplexity (beside the
same figure for the real sentences), well-formedness, copying from the training set, diversity
(distinct-2), how many locked words were kept and how often a locked name comes back in the fill.
`distinct_results` counts the different texts among the 4 results of one request (free text and
middle-third infills, a quarter of --n requests each). The `infill_best_of_N` figures draw N
candidates per middle-third infill and keep the best by the pipeline's ranking. With --method ar the
same blanks are filled left to right by the autoregressive LM from the words before the first blank
(the paper's "left-only" baseline): it cannot see the words after it, so `locked_kept` says how many
it still wrote in place, and `joined_judge_ppl` scores its fill with the locked words put back (how
it joins its right context; for diffusion, which keeps them, it equals `judge_ppl`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.autoregressive.writer import WriteOptions
from engine.cli import option
from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError
from engine.evaluation import DATA
from engine.pipeline import Pipeline
from engine.request import Candidate, Prompt, Request
from engine.scoring.judge import Judge
from engine.scoring.metrics import copied_fraction, distinct_n, locked_kept, repeated_names, well_formed
from engine.text.data import read_sentences
from engine.text.template import Template, fixed_length, free_template, template_from_ids
from engine.text.tokenizer import Tokenizer, split_words


@dataclass
class QualityOptions:
    """`evaluate quality`'s own flags (the model, sampling and seed are every evaluation's)."""

    n: int = option(64, "samples of each kind")
    batch: int = option(64, "rows sampled at once")
    candidates: int = option(4, "candidates per infill for the best-of figures")
    train: str = option(str(DATA / "train.csv"), "training sentences (for copied_from_train)")
    valid: str = option(str(DATA / "valid.csv"), "real sentences to compare and infill")
    show: int = option(0, "include this many verbatim samples of each kind")
    method: str = option("diffusion", "ar: free text and infills written left to right by the autoregressive LM "
                                      "(left-only)", choices=("diffusion", "ar"))

    def __post_init__(self) -> None:
        if self.n < 1 or self.batch < 1 or self.candidates < 1:
            raise EngineError("--n, --batch and --candidates must be at least 1")


def judge_for(pipe: Pipeline, fluency_judge: str | None) -> Judge:
    """The judge that scores an evaluation's fluency: the one in the directory `fluency_judge` (an LM
    trained apart), else the model's own; the model must have one either way (it ranks the samples)."""
    if pipe.judge is None:
        raise EngineError(f"{pipe.directory} has no fluency judge (judge.json): train one with --judge")
    return Judge.other_or(fluency_judge, pipe.judge, pipe.tokenizer)


def spread_sentences(path: Path, pipe: Pipeline, n: int) -> list[list[str]]:
    """Up to n sentences of the file that the model can write (every word known, 4 words to its length),
    evenly spread over the file: consecutive lines share one meaning representation."""
    usable = [w for w in map(split_words, read_sentences(path))
              if all(x in pipe.tokenizer for x in w) and 4 <= len(w) <= pipe.seq_len - 2]
    return [usable[i * len(usable) // n] for i in range(min(n, len(usable)))]


def middle_third(n: int) -> set[int]:
    return set(range(n // 3, 2 * (n // 3)))


def first_words(n: int) -> set[int]:
    return set(range(max(1, n // 3)))


def last_words(n: int) -> set[int]:
    """The last third before a final punctuation mark (which stays locked)."""
    return set(range(max(0, n - 1 - max(1, (n - 1) // 3)), n - 1))


def scattered_words(n: int) -> set[int]:
    """Three single words, evenly spread (never the final punctuation)."""
    return {min(n - 2, n * (2 * j + 1) // 6) for j in range(3)}


# positions blanked in a sentence of n words, per pattern
BLANK_PATTERNS = {"middle": middle_third, "start": first_words, "end": last_words, "scattered": scattered_words}


def infill_templates(sentences: list[list[str]], pipe: Pipeline, pattern: str = "middle") -> list[Template]:
    """Each sentence with the pattern's words blanked (one free word per blanked word)."""
    templates = []
    for words in sentences:
        blank = BLANK_PATTERNS[pattern](len(words))
        ids = [None if i in blank else pipe.tokenizer.index[w] for i, w in enumerate(words)]
        templates.append(template_from_ids(ids, pipe.seq_len))
    return templates


def best_of(pipe: Pipeline, templates: list[Template], options: dict, *, seed: int, batch: int,
            candidates: int = 1) -> tuple[list[Candidate], list[list[int]], float]:
    """The best of `candidates` samples for each template, in batches of `batch` rows; their token
    ids (START ... END, then PAD for diffusion's rows); and the seconds. `options`: the Request's
    method and its options."""
    best, tokens, seconds, step = [], [], 0.0, max(1, batch // candidates)
    for i in range(0, len(templates), step):
        request = Request(prompts=tuple(Prompt(t) for t in templates[i:i + step]), samples=1,
                          candidates=candidates, seed=seed + i, **options)
        result = pipe.run(request)
        best += [group[0] for group in result.ranked]
        tokens += [result.tokens(group[0].row) for group in result.ranked]
        seconds += result.cost.seconds
    return best, tokens, seconds


def distinct_results(pipe: Pipeline, templates: list[Template], options: dict, *, seed: int,
                     samples: int = 4) -> dict:
    """How many different texts a request for `samples` results returns, per request (one request per
    template, as the editor sends them): the mean, and the share of requests with all different."""
    counts = []
    for i, template in enumerate(templates):
        result = pipe.run(Request(prompts=(Prompt(template),), samples=samples, seed=seed + i, **options))
        counts.append(len({c.text for c in result.best}))
    return {"samples": samples, "requests": len(counts), "mean_distinct": round(sum(counts) / len(counts), 3),
            "all_distinct": round(sum(c == samples for c in counts) / len(counts), 3)}


def joined(template: Template, words: list[str], tokenizer: Tokenizer) -> list[str]:
    """The words with every locked word put back at its place: how a fill that did not keep them
    (left-to-right writing, which cannot see past a blank) reads beside its right context."""
    if fixed_length(template) is None:
        return words
    return [tokenizer.words[template.ids[i + 1]] if template.locked[i + 1] else w for i, w in enumerate(words)]


def score(pipe: Pipeline, templates: list[Template], options: dict, *, seed: int, batch: int,
          train: set[tuple[str, ...]], judge: Judge, candidates: int = 1) -> tuple[dict, list[str]]:
    best, tokens, seconds = best_of(pipe, templates, options, seed=seed, batch=batch, candidates=candidates)
    words = [c.words for c in best]
    metrics = {
        "judge_ppl": round(judge.perplexity(words), 2),
        "joined_judge_ppl": round(judge.perplexity([joined(t, w, pipe.tokenizer) for t, w in
                                                         zip(templates, words, strict=True)]), 2),
        "well_formed": round(sum(well_formed(t, pipe.tokenizer) for t in tokens) / len(tokens), 3),
        "copied_from_train": round(copied_fraction(words, train), 3),
        "distinct_2": round(distinct_n(words, 2), 3),
        "locked_kept": locked_kept(templates, words, pipe.tokenizer),
        "repeated_name": round(repeated_names(templates, words, pipe.tokenizer), 3),
        "seconds_per_sample": round(seconds / len(templates), 4),
    }
    return metrics, [" ".join(w) for w in words]


def quality(pipe: Pipeline, options: QualityOptions, sampling: SampleOptions, *, writing: WriteOptions,
            seed: int = 0, fluency_judge: str | None = None) -> dict:
    """The report of `python -m engine.evaluate quality` (see the module docstring); `fluency_judge`: the
    directory of the judge that scores fluency (None: the model's own)."""
    judge = judge_for(pipe, fluency_judge)
    sampling.record_latents = False
    run = {"method": options.method, "sampling": sampling, "writing": writing}
    train = {tuple(split_words(s)) for s in read_sentences(Path(options.train))}
    valid = spread_sentences(Path(options.valid), pipe, options.n)
    report = {"real_valid": {"judge_ppl": round(judge.perplexity(valid), 2),
                             "distinct_2": round(distinct_n(valid), 3), "n": len(valid)}}
    texts = {}
    shared = {"seed": seed, "batch": options.batch, "train": train, "judge": judge}
    report["free"], texts["free"] = score(pipe, [free_template(pipe.seq_len)] * options.n, run, **shared)
    blanked = {pattern: infill_templates(valid, pipe, pattern) for pattern in BLANK_PATTERNS}
    for pattern, templates in blanked.items():
        name = "infill" if pattern == "middle" else f"infill_{pattern}"
        report[name], texts[name] = score(pipe, templates, run, **shared)
    requests = max(1, options.n // 4)  # a request per template, as the editor sends them
    report["distinct_results"] = {
        "free": distinct_results(pipe, [free_template(pipe.seq_len)] * requests, run, seed=seed),
        "infill": distinct_results(pipe, blanked["middle"][:requests], run, seed=seed)}
    if options.candidates > 1:
        best = f"infill_best_of_{options.candidates}"
        report[best], texts[best] = score(pipe, blanked["middle"], run, **shared, candidates=options.candidates)
    shaping = vars(writing) if options.method == "ar" else \
        {k: v for k, v in vars(sampling).items() if k != "record_latents"}
    report["settings"] = {"n": options.n, "method": options.method, **shaping,
                          "fluency_judge": str(fluency_judge or pipe.directory),
                          "seed": seed, "model": str(pipe.directory), "precision": pipe.precision}
    if options.show:
        report["samples"] = {name: text[: options.show] for name, text in texts.items()}
        report["samples"]["infill_source"] = [" ".join(w) for w in valid[: options.show]]
    return report
