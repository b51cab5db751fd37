"""The built-in prompt sets, in one place: calibration's, the parity tests'
and the GPU tools'. (The benchmark's workloads, HumanEval and IFBench, come
from their own packages: tools/bench/workloads.py.)

Each set is fixed: its texts and their order are part of what the numbers
measured on it mean, so a set is extended by adding a new one.
"""

from __future__ import annotations

# Calibration's own text (specbound_cpp.calibrate): not HumanEval (the
# benchmark), but the same kinds of text, code first.
CALIBRATION = [
    "def merge_sorted(a: list[int], b: list[int]) -> list[int]:\n    \"\"\"Merge two sorted lists into one sorted list.\"\"\"\n",
    "class Stack:\n    \"\"\"A simple LIFO stack backed by a Python list.\"\"\"\n\n    def __init__(self):\n",
    "import json\n\n\ndef load_config(path):\n    \"\"\"Read a JSON config file and return it as a dict, with defaults filled in.\"\"\"\n",
    "def is_palindrome(s: str) -> bool:\n    \"\"\"Return True if s reads the same forwards and backwards, ignoring case and spaces.\"\"\"\n",
    "# Binary search over a sorted list\ndef binary_search(items, target):\n",
    "The water cycle describes how water moves on, above and below the surface of the Earth.",
    "Here is a short guide to brewing a good cup of tea:\n\n1.",
    "Q: What is the difference between a list and a tuple in Python?\nA:",
]

# A long prompt for PARITY (180-260 tokens with the registry's tokenizers).
LONG = (
    "The lighthouse keeper had kept the same routine for thirty-one years. Every evening, "
    "an hour before sunset, he climbed the one hundred and twelve steps of the tower, wound "
    "the clockwork that turned the great lens, trimmed the wick, and polished the brass until "
    "it reflected his tired face. The island was small, barely large enough for the tower, a "
    "stone cottage, a vegetable garden walled against the wind, and a shed where he kept the "
    "oil, the spare glass and a boat he had not used in a decade. Supplies came once a month "
    "on the mail steamer, together with newspapers that were already old and letters from a "
    "sister who lived in the capital and wrote mostly about the weather. He did not mind the "
    "solitude. He had his books, his logbook, in which he recorded the wind, the sea state "
    "and every ship that passed, and the company of a grey cat that had arrived one winter "
    "on a fishing boat and refused to leave. Then, one autumn morning, a letter arrived that "
    "was not from his sister. It bore the seal of the Maritime Commission, and it said that"
)

# Greedy parity with llama.cpp (tests/test_parity_llamacpp.py): varied kinds of
# text, each completed plainly.
PARITY = {
    "code": "def merge_sorted(a: list[int], b: list[int]) -> list[int]:\n"
            '    """Merge two sorted lists into one sorted list."""\n',
    "prose": "The old bridge over the river had been closed for years, but on the first warm day of spring",
    "list": "Things to pack for a week of hiking in the mountains:\n1.",
    "dialogue": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                "<|im_start|>user\nWhat is the capital of Australia, and why isn't it Sydney?"
                "<|im_end|>\n<|im_start|>assistant\n",
    "math": "Question: A train travels 180 km in 2.5 hours. What is its average speed in km/h? "
            "Show your work.\nAnswer:",
    "json": 'Here is the user record as JSON:\n{"id": 1042, "name": "Ada Lovelace", "roles": [',
    "french": "Il était une fois, dans un petit village au bord de la mer, une jeune fille qui",
    "long": LONG,
}  # fmt: skip
# the prompts of PARITY written with the chat template's special tokens (tokenized with special=True)
PARITY_SPECIAL = frozenset({"dialogue"})

# The GPU speed table (tools/gpu/speed.py): three of PARITY, code, prose and a list.
SPEED = {name: PARITY[name] for name in ("code", "prose", "list")}

# SpecBound against plain decoding per device setting (tools/gpu/modes.py).
DEVICE_MODES = ["def fibonacci(n):\n    ", "The capital of France is"]
