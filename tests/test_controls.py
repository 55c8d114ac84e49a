"""Controls: span rules, oracles, target files, classifier gradients, composition, guidance."""

import dataclasses
import json

import pytest
import torch

from engine.controls import COMPOSED, KINDS, MEANING, STEERED
from engine.controls.classifier import load_classifier
from engine.controls.guidance import Guidance, GuidanceOptions
from engine.controls.include import parse_field as parse_include
from engine.controls.length import LengthControl, LengthTarget
from engine.controls.pos import PosTarget
from engine.controls.semantic import SemanticTarget, mentions, parse_mr
from engine.controls.spans import SpanTarget
from engine.controls.targets import build_controls, constrain, read_targets, targets_from_fields
from engine.controls.tree import tree_target
from engine.diffusion.sampler import GuideStep, SampleOptions
from engine.errors import CheckpointError, ConfigError, TargetError, TemplateError
from engine.pipeline import Pipeline
from engine.request import Request
from engine.text.syntax import Parse, attachment_f1, constituent_spans, parse
from engine.text.template import fixed_length, free_template, length_template, parse_template


def hand_parse(rows: str) -> Parse:
    """A parse from lines 'word POS head dep' (head = 0-based index, the root its own index)."""
    cells = [line.split() for line in rows.strip().splitlines()]
    return Parse(tuple(c[0] for c in cells), tuple(c[1] for c in cells), tuple(int(c[2]) for c in cells),
                 tuple(c[3] for c in cells))


# "The Eagle is a cheap pub near the river because it is popular ."
EAGLE = hand_parse("""
The DET 1 det
Eagle PROPN 2 nsubj
is AUX 2 ROOT
a DET 5 det
cheap ADJ 5 amod
pub NOUN 2 attr
near ADP 5 prep
the DET 8 det
river NOUN 6 pobj
because SCONJ 11 mark
it PRON 11 nsubj
is AUX 2 advcl
popular ADJ 11 acomp
. PUNCT 2 punct
""")


def test_span_rules_on_a_hand_written_parse():
    spans = constituent_spans(EAGLE)
    expected = {
        (0, 1, "NP"),  # The Eagle
        (3, 8, "NP"), (3, 5, "NP"),  # a cheap pub near the river / its base NP a cheap pub
        (6, 8, "PP"), (7, 8, "NP"),  # near the river / the river
        (9, 12, "SBAR"), (10, 12, "S"), (11, 12, "VP"),  # because it is popular / it is popular / is popular
        (10, 10, "NP"), (12, 12, "ADJP"),
        (0, 12, "S"), (2, 12, "VP"),  # the sentence (final stop trimmed) and its VP
    }
    assert spans == expected
    assert (4, 4, "ADJP") not in spans  # a lone attributive adjective is not a phrase


def test_span_rules_relative_clause_and_subjectless_verb():
    tree = hand_parse("""
Wildwood PROPN 0 ROOT
, PUNCT 0 punct
located VERB 0 acl
in ADP 2 prep
the DET 6 det
city NOUN 6 compound
centre NOUN 3 pobj
""")
    spans = constituent_spans(tree)
    assert (2, 6, "VP") in spans and (3, 6, "PP") in spans and (0, 6, "NP") in spans and (0, 0, "NP") in spans
    relative = hand_parse("""
a DET 1 det
pub NOUN 1 ROOT
that PRON 3 nsubj
serves VERB 1 relcl
food NOUN 3 dobj
""")
    spans = constituent_spans(relative)
    assert {(2, 4, "SBAR"), (3, 4, "S"), (3, 4, "VP"), (0, 1, "NP"), (0, 4, "NP")} <= spans


def test_attachment_f1_counts_labelled_arcs():
    assert attachment_f1(EAGLE, EAGLE) == 1.0
    wrong_label = Parse(EAGLE.words, EAGLE.pos, EAGLE.heads, ("det", "dobj", *EAGLE.deps[2:]))
    assert attachment_f1(EAGLE, wrong_label) == pytest.approx(13 / 14)
    assert attachment_f1(EAGLE, Parse(("Hi",), ("INTJ",), (0,), ("ROOT",))) == 0.0


def controls_for(pipe, rows, weights=None):
    return build_controls(rows, pipe.networks.control_source, weights or {})


def fit(templates, controls, seq_len):
    templates = list(templates)
    constrain(templates, controls, seq_len, [False] * len(templates))
    return templates


def test_spacy_oracles_on_hand_written_sentences(control_model):
    pipe = Pipeline.from_pretrained(control_model, precision="fp32")
    words = "The Eagle is a pub near the river .".split()
    tags = tuple(parse([words])[0].pos)
    assert tags == ("DET", "PROPN", "AUX", "DET", "NOUN", "ADP", "DET", "NOUN", "PUNCT")
    pos = controls_for(pipe, [[PosTarget(tags)]] * 3)[0]
    scores = pos.evaluate([words, "The Eagle is a pub .".split(), "near the river the Eagle is a pub .".split()])
    assert scores[0] == 1.0 and scores[1] == pytest.approx(5 / 9) and scores[2] < 0.5
    tree = controls_for(pipe, [[tree_target(" ".join(words))]] * 2)[0]
    assert tree.evaluate([words, "pub river the near Eagle".split()]) == [1.0, pytest.approx(0.0, abs=0.3)]
    spans = controls_for(pipe, [[SpanTarget(((5, 7, "PP"),))]] * 2)[0]
    assert spans.evaluate([words, "The Eagle is a pub .".split()]) == [1.0, 0.0]
    semantic = controls_for(pipe, [[SemanticTarget("area", "city centre")]] * 3)[0]
    assert semantic.evaluate([["in", "the", "City", "centre"], ["city", "near", "centre"], []]) == [1.0, 0.0, 0.0]
    assert LengthControl([LengthTarget(3)] * 2).evaluate([["a", "b", "c"], ["a"]]) == [1.0, 0.0]
    assert mentions(["5", "out", "of", "5"], "5 out of 5") and not mentions(["5"], "5 out of 5")


def test_meaning_representations_give_semantic_targets():
    assert parse_mr("name[The Eagle], customer rating[5 out of 5], eatType[pub]") == [
        SemanticTarget("name", "The Eagle"), SemanticTarget("customer rating", "5 out of 5"),
        SemanticTarget("eatType", "pub")]


@pytest.mark.parametrize("kind, lines, message", [
    ("pos", ['{"pos": ["DET", "NOUN"]}', '{"pos": ["DET", "NUON"]}'], "line 2: unknown POS tag 'NUON'"),
    ("pos", ['{"pos": ["DET", "NOUN"'], "line 1: not valid JSON"),
    ("pos", ['{"pos": ["DET"], "words_": ["a", "b"]}'], "line 1: \"pos\" has 1 tags but \"words_\" has 2"),
    ("spans", ['{"words_": ["a", "pub"], "spans": [[0, 1, "NP"]]}',
               '{"words_": ["a", "pub"], "spans": [[1, 2, "NP"]]}'],
     r"line 2: span \[1, 2\] is out of range \(the sentence has 2 words"),
    ("spans", ['{"spans": [[0, 1, "XP"]]}'], "line 1: unknown span label 'XP'"),
    ("semantic", ['["food", ":", "Italian"]', '', '["flavour", ":", "sweet"]'], "line 3: unknown field 'flavour'"),
    ("semantic", ['["food", "Italian"]'], "line 1: a semantic target is a list like"),
    ("length", ["12", "twelve"], "line 2: a length must be a whole number"),
    ("length", ["0"], "line 1: a length must be a positive"),
    ("compose", ['{"pos": ["DET"], "attr": ["food", ":"]}'], "line 1: a semantic target needs a field"),
])
def test_malformed_target_files_name_the_line(tmp_path, kind, lines, message):
    path = tmp_path / "targets"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TargetError, match=message):
        read_targets(kind, path)


def test_target_files_drop_start_end_and_newline(tmp_path):
    path = tmp_path / "pos.jsonl"
    path.write_text(json.dumps({"pos": ["START", "PROPN", "AUX", "SPACE", "END"],
                                "words_": ["START", "Zizzi", "is", "\n", "END"]}) + "\n")
    (line,) = read_targets("pos", path)
    assert line.targets == (PosTarget(("PROPN", "AUX"), ("Zizzi", "is")),) and line.line == 1


@pytest.fixture(scope="module")
def pipe(control_model):
    return Pipeline.from_pretrained(control_model, precision="fp32")


@pytest.mark.parametrize(("prompt", "span", "match"), [
    ({"template": "The Eagle is a _ _ _ ."}, "4 9 PP",
     r"span \[4, 9\] runs past the end of the template: it has 8 words"),
    ({"length": 5}, "4 9 PP", r"span \[4, 9\] runs past the end of the length asked for: it has 5 words"),
    ({"template": "The Eagle is ... ."}, "4 12 PP",  # lengths 5 to 12 tried for the blank: none reaches 12
     r"span \[4, 12\] runs past the end of the template \(its ... blank at its longest\): it has 12 words"),
    ({"vary": "The Eagle is a pub ."}, "4 9 PP",
     r"span \[4, 9\] runs past the end of the sentence to vary: it has 6 words"),
])
def test_a_span_past_the_end_of_a_fixed_length_is_refused_steered_or_not(pipe, prompt, span, match):
    spans = targets_from_fields({"spans": f"1 2 NP; {span}"})
    for strength in (0.0, 1.0):
        with pytest.raises(TargetError, match=match):
            pipe.run(Request.one(**prompt, targets=spans, samples=1, sampling=SampleOptions(steps=2),
                                 guidance=GuidanceOptions(strength=strength)))
    if "template" in prompt and "..." not in prompt["template"]:  # written left to right: refused the same
        with pytest.raises(TargetError, match=match):
            pipe.check(Request.one(**prompt, targets=spans, method="ar"))
    fitting = targets_from_fields({"spans": "4 7 PP"})  # ends on the last word: fine
    pipe.run(Request.one("The Eagle is a _ _ _ .", targets=fitting, samples=1, sampling=SampleOptions(steps=2)))
    longer = pipe.plan(Request.one("The Eagle is ... .", targets=targets_from_fields({"spans": "4 9 PP"})))
    assert {fixed_length(t) for t in longer.templates} == {10, 12}  # only the blank's lengths that reach it


def test_a_span_past_the_length_another_control_asks_for_is_refused(pipe):
    rows = [[PosTarget(("DET", "NOUN", "VERB")), SpanTarget(((1, 5, "PP"),))]]
    with pytest.raises(TargetError, match=r"span \[1, 5\] runs past the end of the text the other controls ask "
                                          r"for: it has 3 words"):
        fit([free_template(pipe.seq_len)], controls_for(pipe, rows), pipe.seq_len)
    assert fit([free_template(pipe.seq_len)], controls_for(pipe, [[rows[0][0], SpanTarget(((1, 2, "NP"),))]]),
               pipe.seq_len) == [length_template(3, pipe.seq_len)]


def test_the_registry_says_what_is_composed_and_what_reads_meaning_representations():
    assert COMPOSED == ("pos", "semantic")  # Diffusion-LM's composition task
    targets = KINDS[MEANING].from_mr("name[The Eagle], familyFriendly[yes], food[Italian]")
    assert [t.label for t in targets] == ["name=The Eagle", "food=Italian"]  # yes/no is no word a sentence holds


def one_target_per_kind(pipe):
    tree = tree_target("The Eagle is a pub near the river .")
    return [PosTarget(tree.tree.pos), tree, SpanTarget(((5, 7, "PP"),)), SemanticTarget("food", "Italian"),
            parse_include("Italian, the river")]


def test_each_controls_gradient_step_raises_its_log_prob(pipe):
    x = torch.randn((2, pipe.seq_len, pipe.model.config.embed_dim), generator=torch.Generator().manual_seed(0))
    for target in one_target_per_kind(pipe):
        (control,) = controls_for(pipe, [[target]] * 2)
        guide = Guidance([control], GuidanceOptions(strength=0.05, fluency=0.0, gradient_steps=1, t_min=0.0))
        t = 600
        before = control.log_prob(x, torch.full((2,), t))
        moved, _ = guide(GuideStep(x=x, mean=x, variance=torch.ones(2, 1, 1), t=t, T=max(t, pipe.model.config.T),
                                   estimate=lambda z: z))
        after = control.log_prob(moved, torch.full((2,), t))
        assert (after > before).all(), control.name
        assert guide.classifier_passes == 1


@pytest.mark.slow
def test_guidance_window_guides_only_its_part_of_the_schedule(pipe):
    T = pipe.model.config.T
    targets = targets_from_fields({"pos": "DET NOUN VERB ADV"})
    for t_min, t_max, guided in ((0.0, 1.0, 19), (0.0, 0.5, 10), (0.3, 0.8, 11)):  # of 20 steps at T/20 apart
        options = GuidanceOptions(strength=0.3, gradient_steps=2, t_min=t_min, t_max=t_max)
        assert options.steps_guided(20, T) == guided
        result = pipe.run(Request.one(targets=targets, samples=1, candidates=1, guidance=options,
                                      sampling=SampleOptions(steps=20, record_latents=False)))
        assert result.cost.classifier_passes == 2 * guided, (t_min, t_max)
        scored = [frame.t for frame in result.trajectory.frames if frame.scores]
        assert len(scored) == guided  # a frame carries the guide's belief only after a guided step
    for bad in ({"t_min": 0.6, "t_max": 0.4}, {"t_max": 1.5}, {"t_min": -0.1}):
        with pytest.raises(ConfigError, match="t_m"):
            GuidanceOptions(**bad)


def test_composition_sums_weighted_log_probs(pipe):
    targets = one_target_per_kind(pipe)
    weights = {"pos": 2.0, "semantic": 0.5}
    controls = controls_for(pipe, [targets] * 2, weights)
    assert [c.name for c in controls] == list(STEERED)  # one per steered kind, in the registry's order
    x, t = torch.randn((2, pipe.seq_len, pipe.model.config.embed_dim)), torch.full((2,), 300)
    total, each = Guidance(controls).log_prob(x, t)
    expected = sum(weights.get(name, 1.0) * each[name] for name in STEERED)
    assert torch.allclose(total, expected)
    for control in controls:
        assert torch.allclose(each[control.name], control.log_prob(x, t))


def test_strength_zero_equals_unguided_sampling(pipe):
    target = (SemanticTarget("food", "Italian"),)

    def run(**options):
        return pipe.run(Request.one(samples=3, seed=5, sampling=SampleOptions(steps=12), candidates=1,
                                    **options)).trajectory

    plain = run()
    off = run(targets=target, guidance=GuidanceOptions(strength=0.0, t_min=0.0))
    on = run(targets=target, guidance=GuidanceOptions(strength=0.5, t_min=0.0))  # guided to the last step
    assert torch.equal(plain.tokens, off.tokens)
    assert torch.equal(plain.frames[-1].latents, off.frames[-1].latents)
    assert not torch.equal(plain.frames[-1].latents, on.frames[-1].latents)
    assert set(on.frames[-1].scores) == {"semantic"} and on.frames[-1].scores["semantic"].shape == (3,)


def test_guidance_through_the_denoisers_estimate_costs_denoiser_passes(pipe):
    request = Request.one(targets=(PosTarget(("PROPN", "AUX", "DET", "NOUN", "PUNCT")),), samples=1, seed=1,
                          sampling=SampleOptions(steps=6),
                          guidance=GuidanceOptions(strength=0.1, gradient_steps=2, reads="x0_hat", t_min=0.0))
    result = pipe.run(request)
    assert len(result.best[0].words) == 5
    # every step but the last takes two gradient steps, each one denoiser and one classifier pass
    assert result.cost.denoiser_passes == 6 + 2 * 5 and result.cost.classifier_passes == 2 * 5


def test_controls_fix_the_length_and_conflicts_are_errors(pipe):
    pos = controls_for(pipe, [[PosTarget(("PROPN", "AUX", "NOUN"))]])
    assert fit([free_template(pipe.seq_len)], pos, pipe.seq_len) == [length_template(3, pipe.seq_len)]
    with pytest.raises(TemplateError, match="conflicting controls: pos asks for 3 words but the template"):
        fit([length_template(4, pipe.seq_len)], pos, pipe.seq_len)
    same = parse_template("The _ _", pipe.tokenizer, pipe.seq_len)
    assert fit([same], pos, pipe.seq_len) == [same]
    both = controls_for(pipe, [[PosTarget(("PROPN", "AUX", "NOUN")), LengthTarget(5)]])
    with pytest.raises(TemplateError, match="conflicting controls: length asks for 5"):
        fit([free_template(pipe.seq_len)], both, pipe.seq_len)
    with pytest.raises(TemplateError, match="impossible"):
        fit([free_template(pipe.seq_len)], [LengthControl([LengthTarget(99)])], pipe.seq_len)
    with pytest.raises(TargetError, match="unknown value 'Thai' for food: the classifier knows English, French, It"):
        controls_for(pipe, [[SemanticTarget("food", "Thai")]])


def test_missing_classifier_is_a_clear_error(tiny_model):
    with pytest.raises(CheckpointError, match="no pos classifier in .*train one with python -m engine.train_cont"):
        load_classifier(tiny_model, "pos")
    untrained = [name for name, kind in KINDS.items() if not kind.trained]  # those needing no classifier
    assert untrained and Pipeline.from_pretrained(tiny_model).control_kinds() == untrained


def test_every_kinds_measured_setting_is_a_valid_guidance_setting():
    from engine.controls.guidance import BASE_GUIDANCE

    for kind in KINDS.values():
        assert set(kind.guidance) <= set(BASE_GUIDANCE), kind.name
        GuidanceOptions(**kind.guidance)  # raises on a value out of range
        assert 1 <= kind.candidates <= 16


def test_guidance_defaults_come_from_the_kinds_measured_settings(monkeypatch):
    from engine.controls.guidance import BASE_GUIDANCE, default_guidance

    cheap = {"strength": 3.0, "reads": "x_t"}
    dear, gentler = ({"strength": s, "reads": "x0_hat", "gradient_steps": 1} for s in (0.3, 0.1))
    narrow = {"strength": 0.1, "t_min": 0.7}
    for name, setting in (("pos", cheap), ("semantic", dear), ("include", gentler), ("tree", {}), ("spans", narrow)):
        monkeypatch.setitem(KINDS, name, dataclasses.replace(KINDS[name], guidance=setting))
    assert default_guidance([]) == BASE_GUIDANCE and default_guidance(["tree"]) == BASE_GUIDANCE
    assert default_guidance(["pos"]) == BASE_GUIDANCE | cheap
    # the dearer reading wins, at the gentlest strength of the kinds
    assert default_guidance(["pos", "semantic"]) == BASE_GUIDANCE | dear
    assert default_guidance(["pos", "spans"]) == BASE_GUIDANCE | cheap | {"strength": 0.1}  # then the wider window
    assert default_guidance(["semantic", "include"]) == BASE_GUIDANCE | gentler
    options = GuidanceOptions(fluency=0.5).resolved(["pos"])
    assert (options.strength, options.fluency, options.gradient_steps, options.reads) == (3.0, 0.5, 3, "x_t")
    assert Guidance([], GuidanceOptions()).options == GuidanceOptions(**BASE_GUIDANCE)
    with pytest.raises(ConfigError, match="guidance strength must be a number from 0 to 10"):
        GuidanceOptions(strength=float("nan"))


def test_steered_requests_draw_the_kinds_default_candidates(monkeypatch, pipe):

    monkeypatch.setitem(KINDS, "include", dataclasses.replace(KINDS["include"], candidates=3))
    monkeypatch.setitem(KINDS, "length", dataclasses.replace(KINDS["length"], candidates=2))
    include, length = parse_include("pub"), LengthTarget(4)
    assert Request.one(targets=(include, length)).drawn(Request.one().prompts[0]) == 1  # no targets: one each
    semantic = SemanticTarget("food", "Italian")
    monkeypatch.setitem(KINDS, "semantic", dataclasses.replace(KINDS["semantic"], candidates=2))
    for targets, candidates, steer, drawn in (((include,), None, True, 3), ((include, length), None, True, 3),
                                              ((length,), None, True, 2), ((include,), 5, True, 5),
                                              ((include,), None, False, 1), ((include, semantic), None, True, 2)):
        request = Request.one(targets=targets, samples=2, candidates=candidates, steer=steer)
        assert request.drawn(request.prompts[0]) == drawn
        assert len(pipe.plan(request).templates) == 2 * drawn
        result = pipe.run(dataclasses.replace(request, sampling=SampleOptions(steps=3)))
        assert len(result.best) == 2 and result.cost.rows == 2 * drawn
    with pytest.raises(ConfigError, match=r"at most 256 rows, got 288 \(32 samples, 9 candidates, 1 prompts\)"):
        monkeypatch.setitem(KINDS, "include", dataclasses.replace(KINDS["include"], candidates=9))
        Request.one(targets=(include,), samples=32)


def test_spans_steer_towards_the_first_label_of_a_chain_the_classifier_knows(pipe):
    names = pipe.classifier("spans").config.labels
    (chain,) = controls_for(pipe, [[SpanTarget(((1, 3, "PRN::NP"),))]])
    assert chain.labels["span_labels"][0, 0] == names.index("NP")  # PRN is read, but no rule derives it
    with pytest.raises(TargetError, match="cannot steer towards 'PRN'"):
        controls_for(pipe, [[SpanTarget(((1, 3, "PRN"),))]])
