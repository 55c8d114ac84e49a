"""`python -m engine.evaluate quality`: free samples and infilling, scored with numbers.

Free samples and infills (valid sentences with their middle third blanked) are scored by the
fluency judge's perplexity (beside the same figure for real valid sentences), well-formedness,
copying from the training set, diversity (distinct-2) and how many locked words were kept. The
`infill_best_of_N` figures draw N candidates per infill and keep the best by the pipeline's ranking.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.diffusion.sampler import SampleOptions
from engine.errors import EngineError
from engine.pipeline import Pipeline
from engine.request import Candidate, Prompt, Request
from engine.scoring.metrics import copied_fraction, distinct_n, locked_kept, well_formed
from engine.text.data import read_sentences
from engine.text.template import Template, free_template, template_from_ids
from engine.text.tokenizer import split_words


def infill_templates(sentences: list[list[str]], pipe: Pipeline) -> list[Template]:
    """Each sentence with its middle third of words blanked (one free word per blanked word)."""
    templates = []
    for words in sentences:
        third = len(words) // 3
        ids = [None if third <= i < 2 * third else pipe.tokenizer.index[w] for i, w in enumerate(words)]
        templates.append(template_from_ids(ids, pipe.seq_len))
    return templates


def best_of(pipe: Pipeline, templates: list[Template], sampling: SampleOptions, *, seed: int, batch: int,
            candidates: int = 1) -> tuple[list[Candidate], list[list[int]], float]:
    """The best of `candidates` samples for each template, in batches of `batch` rows; their token
    ids (START ... END PAD ...); and the seconds."""
    best, tokens, seconds, step = [], [], 0.0, max(1, batch // candidates)
    for i in range(0, len(templates), step):
        request = Request(prompts=tuple(Prompt(t) for t in templates[i:i + step]), samples=1,
                          candidates=candidates, seed=seed + i, sampling=sampling)
        result = pipe.run(request)
        best += [group[0] for group in result.ranked]
        tokens += [result.trajectory.tokens[group[0].row].tolist() for group in result.ranked]
        seconds += result.cost.seconds
    return best, tokens, seconds


def score(pipe: Pipeline, templates: list[Template], args: argparse.Namespace, sampling: SampleOptions, *,
          train: set[tuple[str, ...]], candidates: int = 1) -> tuple[dict, list[str]]:
    best, tokens, seconds = best_of(pipe, templates, sampling, seed=args.seed, batch=args.batch, candidates=candidates)
    words = [c.words for c in best]
    metrics = {
        "judge_ppl": round(pipe.judge.perplexity(words), 2) if pipe.judge else None,
        "well_formed": round(sum(well_formed(t, pipe.tokenizer) for t in tokens) / len(tokens), 3),
        "copied_from_train": round(copied_fraction(words, train), 3),
        "distinct_2": round(distinct_n(words, 2), 3),
        "locked_kept": locked_kept(templates, words, pipe.tokenizer),
        "seconds_per_sample": round(seconds / len(templates), 4),
    }
    return metrics, [" ".join(w) for w in words]


def quality(args: argparse.Namespace, sampling: SampleOptions) -> dict:
    if args.n < 1 or args.batch < 1 or args.candidates < 1:
        raise EngineError("--n, --batch and --candidates must be at least 1")
    pipe = Pipeline.load(args.model)
    if pipe.judge is None:
        raise EngineError(f"{pipe.directory} has no fluency judge (judge.json): train one with --judge")
    sampling.record_latents = False
    train = {tuple(split_words(s)) for s in read_sentences(Path(args.train))}
    valid = [split_words(s) for s in read_sentences(Path(args.valid))]
    valid = [w for w in valid if all(x in pipe.tokenizer for x in w) and len(w) + 2 <= pipe.seq_len][: args.n]
    free, free_text = score(pipe, [free_template(pipe.seq_len)] * args.n, args, sampling, train=train)
    infill, infill_text = score(pipe, infill_templates(valid, pipe), args, sampling, train=train)
    ranked, ranked_text = score(pipe, infill_templates(valid, pipe), args, sampling, train=train,
                                candidates=args.candidates)
    report = {
        "real_valid": {"judge_ppl": round(pipe.judge.perplexity(valid), 2),
                       "distinct_2": round(distinct_n(valid), 3), "n": len(valid)},
        "free": free, "infill": infill, f"infill_best_of_{args.candidates}": ranked,
        "settings": {"n": args.n, **{k: v for k, v in vars(sampling).items() if k != "record_latents"},
                     "seed": args.seed, "model": str(pipe.directory)},
    }
    if args.show:
        report["samples"] = {"free": free_text[: args.show], "infill": infill_text[: args.show],
                             f"infill_best_of_{args.candidates}": ranked_text[: args.show],
                             "infill_source": [" ".join(w) for w in valid[: args.show]]}
    return report
