"""Writes the ids Python's `tokenizers` gives each text, for huggingface-encodings.json.

The tokenizer.json is what `circuitry tokenizer export` makes of circuitry-tokenizer.json; the
texts come from a JSON list or from the "texts" of an earlier huggingface-encodings.json:

    circuitry tokenizer export --tokenizer circuitry-tokenizer.json --out /tmp/tokenizer.json
    python make_huggingface_fixture.py /tmp/tokenizer.json huggingface-encodings.json > new.json
"""
import json
import sys

import tokenizers

tokenizer = tokenizers.Tokenizer.from_file(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    source = json.load(f)
texts = source["texts"] if isinstance(source, dict) else source
ids = [tokenizer.encode(text).ids for text in texts]
json.dump({"tokenizers_version": tokenizers.__version__, "texts": texts, "ids": ids}, sys.stdout)
sys.stdout.write("\n")
