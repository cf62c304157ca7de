"""The workload of traces/python-json.trace.gz: CPython building, encoding and decoding JSON.

Builds a few hundred nested records (a few thousand dicts, lists, strings, ints and floats),
encodes them to JSON text, decodes the text again, checks the round trip, then edits and
re-encodes half of it in small documents, so the heap ramps up, plateaus, and falls as phases
drop their data. Deterministic: a fixed seed.
"""

import json
import random

RECORDS = 250

LETTERS = "abcdefghijklmnopqrstuvwxyz"
rng = random.Random(1998)  # Johnstone & Wilson's year


def make_record(index):
    words = ["".join(rng.choices(LETTERS, k=rng.randint(3, 12))) for _ in range(rng.randint(1, 6))]
    return {
        "id": index,
        "name": " ".join(words),
        "score": rng.random() * 100,
        "tags": [w.upper() for w in words if len(w) > 5],
        "history": [{"step": s, "value": rng.randint(0, 1 << 20)} for s in range(rng.randint(0, 8))],
        "nested": {"level": {"deeper": {"leaf": str(index) * rng.randint(1, 4)}}},
    }


records = [make_record(i) for i in range(RECORDS)]
text = json.dumps(records, indent=1, sort_keys=True)
decoded = json.loads(text)
assert decoded == records

# Drop half of the records, grow the rest, and encode them again in smaller documents.
del records
survivors = decoded[::2]
del decoded, text
for record in survivors:
    record["history"].append({"step": -1, "value": len(record["name"])})
    record["name"] = record["name"].title()
documents = [json.dumps(survivors[i:i + 20]) for i in range(0, len(survivors), 20)]
total = sum(len(json.loads(document)) for document in documents)
assert total == len(survivors)
print(f"{RECORDS} records, {len(documents)} documents, {sum(map(len, documents))} characters")
