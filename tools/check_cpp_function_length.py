"""No C++ function whose body is over 60 lines.

    python tools/check_cpp_function_length.py [--max 60] [PATH ...]

PATHs are files or folders (default: cpp/). A body is the lines strictly
between a function's opening and closing braces, blank lines and comments
included, lambdas included in the function around them. Functions are found
by their braces, not by a C++ parser: comments and literals are blanked out,
then a brace at namespace or class scope opens a function body when the text
before it, back to the last ';', '{' or '}', is a signature: it ends with ')'
(and qualifiers such as const, noexcept, override, mutable, '-> T'), or with
a constructor's initializer list. Prints every function over the limit,
longest first, and exits 1 if there is one.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from check_function_length import check_lengths  # (tools/ is this script's folder)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = [ROOT / "cpp"]
SUFFIXES = (".cpp", ".h", ".inl", ".hpp", ".cc")

_LITERAL_OR_COMMENT = re.compile(r'//[^\n]*|/\*.*?\*/|R"(\w*)\(.*?\)\1"|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
                                 re.S)
_QUALIFIERS = re.compile(r"\)\s*(?:const|noexcept(?:\([^)]*\))?|override|final|mutable|&|&&|->\s*[\w:<>,\s*&]+|\s)*$")
# a constructor's initializer list: complete (before the body), or at a member's brace initializer
_INIT_LIST = re.compile(r"\)\s*(?:noexcept\s*)?:(?!:).*[)}]\s*$", re.S)
_IN_INIT_LIST = re.compile(r"\)\s*(?:noexcept\s*)?:(?!:)[^;]*[\w>]\s*$", re.S)


def blank(text: str) -> str:
    """text with comments, strings and characters replaced by spaces (newlines kept)."""
    return _LITERAL_OR_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def is_signature(before: str) -> bool:
    """whether the text before a '{' at namespace or class scope ends a function's head."""
    head = re.sub(r"^\s*#[^\n]*$", "", before, flags=re.M).strip()  # preprocessor lines
    if "(" not in head or re.match(r"(namespace|enum|struct|class|union)\b", head):
        return False
    return bool(_QUALIFIERS.search(head) or _INIT_LIST.search(head))


def function_bodies(text: str) -> list[tuple[int, int, str]]:
    """(line, body lines, head) of every function body in C++ source text."""
    code = blank(text)
    found = []  # [line of the opening brace, body lines, head]
    # per open brace: the index in found of the body it opens, -1 inside a body,
    # "init" for a member's brace initializer in a constructor's head, None elsewhere
    stack = []
    start = 0  # where the text since the last ';', '{' or '}' began (a head's, at namespace or class scope)
    for m in re.finditer(r"[{};]", code):
        i, c = m.start(), m.group()
        if c == "{":
            if stack and stack[-1] is not None and stack[-1] != "init":
                stack.append(-1)
            elif _IN_INIT_LIST.search(code[start:i]):
                stack.append("init")
                continue  # the head goes on after it
            elif is_signature(code[start:i]):
                found.append([code.count("\n", 0, i) + 1, 0, " ".join(code[start:i].split())])
                stack.append(len(found) - 1)
            else:
                stack.append(None)
        elif c == "}" and stack:
            k = stack.pop()
            if k == "init":
                continue
            if k is not None and k >= 0:
                found[k][1] = max(code.count("\n", 0, i) + 1 - found[k][0] - 1, 0)
        if not (stack and stack[-1] == "init"):
            start = i + 1
    return [(line, n, head) for line, n, head in found]


def main(argv: list[str]) -> int:
    def bodies(path: Path) -> list[tuple[int, str, int]]:
        return [(n, head[:90], line) for line, n, head in function_bodies(path.read_text())]

    return check_lengths(argv, __doc__, DEFAULT_PATHS, SUFFIXES, bodies)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
