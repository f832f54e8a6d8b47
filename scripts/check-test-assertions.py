#!/usr/bin/env python3
"""Fails on a test method that asserts nothing (docs/contributing.md, "Writing tests").

A test ([Fact], [Theory] or an attribute derived from them, named *Fact or *Theory) passes this check when its
body calls Assert.* (or another *Assert class, such as TreeAssert), or calls a helper method of the test code
that does, directly or through other helpers. A test whose assertions live where this script cannot follow them
(a helper in src/, a delegate) names that helper: [AssertsThrough("HelperName")], and must call it.

A test must not return early either (a bare "return;" in its own block): it is skipped with a reason instead.
Prints one line per offending test and "N tests fail the assertion check" last; exits 1 when N > 0.
Usage: check-test-assertions.py [TESTS_DIR]   (default: tests/ of this checkout)
"""
import os
import re
import sys

MODIFIERS = r"(?:(?:public|private|protected|internal|static|async|override|virtual|sealed|new|unsafe|extern|partial)\s+)+"
METHOD = re.compile(MODIFIERS + r"[\w<>\[\],.?() ]+?\s+(\w+)\s*(?:<[^<>()]*>)?\s*\(")
TEST_ATTRIBUTE = re.compile(r"\[\s*(?:Xunit\.)?(\w*(?:Fact|Theory))(?:Attribute)?\s*[\](,]")
ASSERTS_THROUGH = re.compile(r"AssertsThrough\s*\(\s*(?:\"(\w+)\"|nameof\s*\(\s*(?:[\w.]+\.)?(\w+)\s*\))")
ASSERTION = re.compile(r"\b\w*Assert\s*\.\s*\w+|\bAssert\s*\.|\.Should\w*\s*\(")
KEYWORDS = {"if", "for", "foreach", "while", "switch", "using", "lock", "catch", "return", "new", "nameof", "typeof",
            "sizeof", "default", "when", "await", "throw", "fixed", "checked", "unchecked", "base", "this"}


def string_end(text, i):
    """Index just after the string literal starting at i (prefixes $ and @, raw and interpolated strings)."""
    n = len(text)
    start = i
    while text[i] in "$@":
        i += 1
    prefix = text[start:i]
    verbatim, interpolated = "@" in prefix, "$" in prefix
    braces = prefix.count("$")  # raw interpolated strings: $$""" ... {{x}} ... """
    quotes = len(re.match(r'"+', text[i:]).group(0))
    if quotes >= 3:
        closing = '"' * quotes
        j = i + quotes
        while j < n and not text.startswith(closing, j):
            if interpolated and text.startswith("{" * braces, j) and not text.startswith("{" * (braces + 1), j):
                j = hole_end(text, j + braces)
                continue
            j += 1
        return min(n, j + quotes)
    if quotes == 2 and not verbatim:
        return i + 2
    j = i + 1
    while j < n:
        ch = text[j]
        if verbatim and text.startswith('""', j):
            j += 2
        elif not verbatim and ch == "\\":
            j += 2
        elif interpolated and text.startswith("{{", j):
            j += 2
        elif interpolated and ch == "{":
            j = hole_end(text, j + 1)
        elif ch == '"':
            return j + 1
        else:
            j += 1
    return n


def hole_end(text, j):
    """Index just after the '}' closing an interpolation hole whose expression starts at j."""
    depth, n = 0, len(text)
    while j < n:
        ch = text[j]
        if ch == '"' or (ch in "$@" and re.match(r'[$@]{1,3}"', text[j:j + 4])):
            j = string_end(text, j)
            continue
        if ch == "'":
            m = re.match(r"'(?:\\.|[^'\\])*'", text[j:])
            j += len(m.group(0)) if m else 1
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return j + 1
            depth -= 1
        j += 1
    return n


def blank_strings_and_comments(text):
    """The text with comments and the contents of string and character literals replaced by spaces (newlines kept)."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c == '"' or (c in "$@" and re.match(r'[$@]{1,3}"', text[i:i + 4])):
            end = string_end(text, i)
            # Keep the closing quote so the code around still reads as an expression; blank everything else.
            blank(i, end - 1)
            i = end
        elif c == "'":
            m = re.match(r"'(?:\\.|[^'\\])*'", text[i:])
            if m:
                blank(i + 1, i + len(m.group(0)) - 1)
                i += len(m.group(0))
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def matching(text, i, open_char, close_char):
    """Index just after the bracket matching the one at i."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_char:
            depth += 1
        elif text[j] == close_char:
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


def body_after(text, paren):
    """The body of a method whose parameter list opens at paren: a block, or an expression up to ';'."""
    j = matching(text, paren, "(", ")")
    m = re.compile(r"\s*(?:where\s[^{;=]*)?(\{|=>|;)").match(text, j)
    if not m:
        return None
    if m.group(1) == "{":
        start = m.end() - 1
        return text[start:matching(text, start, "{", "}")]
    if m.group(1) == "=>":
        depth = 0
        for k in range(m.end(), len(text)):
            ch = text[k]
            if ch in "({[":
                depth += 1
            elif ch in ")}]":
                depth -= 1
            elif ch == ";" and depth == 0:
                return text[m.end():k]
    return None


def methods(path, text):
    """(name, line, body, preceding attributes) of every method declaration with at least one modifier."""
    for m in METHOD.finditer(text):
        name = m.group(1)
        if name in KEYWORDS:
            continue
        body = body_after(text, m.end() - 1)
        if body is None:
            continue
        # The attributes directly above: back from the declaration over [...] groups and whitespace.
        k = m.start()
        attributes = ""
        while True:
            s = text[:k].rstrip()
            if not s.endswith("]"):
                break
            depth, a = 0, len(s) - 1
            while a >= 0:
                if s[a] == "]":
                    depth += 1
                elif s[a] == "[":
                    depth -= 1
                    if depth == 0:
                        break
                a -= 1
            attributes = s[a:] + attributes
            k = a
        yield name, text.count("\n", 0, m.start()) + 1, body, attributes


def returns_early(body):
    """A bare 'return;' in the test's own block (not in a lambda or local function nested in it)."""
    depth = 0
    for m in re.finditer(r"[{}]|\breturn\s*;", body):
        if m.group(0) == "{":
            depth += 1
        elif m.group(0) == "}":
            depth -= 1
        elif depth <= 1:  # directly in the body (an "if (...) return;"), not in a lambda or loop
            return True
    return False


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests")
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("bin", "obj")]
        for f in files:
            if f.endswith(".cs"):
                path = os.path.join(directory, f)
                with open(path, encoding="utf-8") as stream:
                    raw = stream.read()
                found.extend((path, *method) for method in methods(path, blank_strings_and_comments(raw)))
    # Which helper names assert, directly or through others (by name: overloads count together).
    bodies = {}
    for _, name, _, body, _ in found:
        bodies.setdefault(name, []).append(body)
    asserting = {name for name, bs in bodies.items() if any(ASSERTION.search(b) for b in bs)}
    calls = {name: set(re.findall(r"\b(\w+)\s*(?:<[^<>()]*>)?\s*\(", " ".join(bs))) for name, bs in bodies.items()}
    changed = True
    while changed:
        changed = False
        for name, called in calls.items():
            if name not in asserting and called & asserting:
                asserting.add(name)
                changed = True

    offenders = []
    for path, name, line, body, attributes in found:
        if not TEST_ATTRIBUTE.search(attributes):
            continue
        called = set(re.findall(r"\b(\w+)\s*(?:<[^<>()]*>)?\s*\(", body))
        if returns_early(body):
            offenders.append(f"{os.path.relpath(path)}:{line}: {name} returns early: skip it with a reason instead, so the count says so (docs/contributing.md, \"Writing tests\")")
            continue
        if ASSERTION.search(body) or called & asserting:
            continue
        with open(path, encoding="utf-8") as stream:
            raw_lines = stream.read().splitlines()
        # The raw attribute text above the declaration (the blanked copy lost the helper's name).
        k = line - 2
        while k >= 0 and raw_lines[k].strip().startswith("["):
            k -= 1
        above = "\n".join(raw_lines[k + 1:line])
        through = [a or b for a, b in ASSERTS_THROUGH.findall(above)]
        if through and all(t in called for t in through):
            continue
        why = f"names {', '.join(through)} in [AssertsThrough] but does not call it" if through else "asserts nothing: no Assert call and no helper that asserts"
        offenders.append(f"{os.path.relpath(path)}:{line}: {name} {why} (docs/contributing.md, \"Writing tests\")")

    for o in offenders:
        print(o)
    print(f"{len(offenders)} tests fail the assertion check")
    return 1 if offenders else 0


if __name__ == "__main__":
    sys.exit(main())
