"""20 requests (4 free, 4 per infill pattern), row 0 of each: the default stop rule and every step."""
import json
from pathlib import Path

from engine.diffusion.sampler import SampleOptions
from engine.evaluation.quality import BLANK_PATTERNS, infill_templates
from engine.pipeline import Pipeline
from engine.request import Prompt, Request
from engine.text.data import read_sentences
from engine.text.template import free_template
from engine.text.tokenizer import split_words

pipe = Pipeline.from_pretrained()
valid = [split_words(s) for s in read_sentences(Path("../shared/data/e2e/valid.csv"))]
usable = [w for w in valid if all(x in pipe.tokenizer for x in w) and 4 <= len(w) <= pipe.seq_len - 2]
picked = [usable[i * len(usable) // 4 + 7] for i in range(4)]  # other sentences than the table's first
cases = [("free", free_template(pipe.seq_len))] * 4
for p in BLANK_PATTERNS:
    cases += [(f"infill_{p}", t) for t in infill_templates(picked, pipe, p)]
out = []
for i, (name, template) in enumerate(cases):
    row = {"case": name}
    for label, settle in (("stopped", 1), ("every_step", 0)):
        result = pipe.run(Request(prompts=(Prompt(template),), samples=4, seed=500 + i,
                                  sampling=SampleOptions(settle_steps=settle, record_latents=False)))
        row[label] = result.trajectory.texts[0]
        row[f"{label}_passes"] = result.cost.denoiser_passes
    out.append(row)
print(json.dumps(out, indent=1))
