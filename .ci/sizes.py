#!/usr/bin/env python3
"""House size rules (STYLE.md): no production Rust file over 500 lines, no production function over
80 lines, `main.rs` under 60 lines. Tests (files named tests.rs or under tests/ folders, and
`#[cfg(test)]` modules) are exempt. Prints each breach and exits 1 if there is any.

Functions are measured from the line of their `fn` to the line of their closing brace, found by
counting braces outside string and char literals and comments; good enough for rustfmt-formatted code.
"""
import os
import re
import sys

FILE_LIMIT, FN_LIMIT, MAIN_LIMIT = 500, 80, 60
SKIP_DIRS = {"target", ".git", ".tools", "tests", "benches", "fuzz", "testkit", "bench"}
FN_RE = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)")


def strip(line, state):
    """The line without comments and literal contents; `state` carries an open block comment."""
    out, i = [], 0
    while i < len(line):
        if state["block"]:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out)
            state["block"], i = False, end + 2
            continue
        c = line[i]
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            state["block"], i = True, i + 2
            continue
        if c == '"':
            j = i + 1
            while j < len(line) and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            i = j + 1
            continue
        if c == "'" and re.match(r"'(\\.|[^\\'])'", line[i:]):
            i += len(re.match(r"'(\\.|[^\\'])'", line[i:]).group(0))
            continue
        out.append(c)
        i += 1
    return "".join(out)


def production_lines(lines):
    """Lines outside `#[cfg(test)]` items, as (number, stripped text)."""
    state, skip_depth, depth, pending_test, out = {"block": False}, None, 0, False, []
    for n, raw in enumerate(lines, 1):
        text = strip(raw, state)
        if skip_depth is None and re.match(r"\s*#\[cfg\(test\)\]", raw):
            pending_test = True
            continue
        opens, closes = text.count("{"), text.count("}")
        if pending_test and skip_depth is None:
            if opens or text.strip().endswith(";"):
                pending_test = False
                if opens:
                    skip_depth = depth
                depth += opens - closes
                if skip_depth is not None and depth <= skip_depth:
                    skip_depth = None
                continue
        depth += opens - closes
        if skip_depth is not None:
            if depth <= skip_depth:
                skip_depth = None
            continue
        out.append((n, text))
    return out


def long_functions(path, prod):
    found, stack, depth = [], [], 0
    for n, text in prod:
        m = FN_RE.match(text)
        if m and not text.rstrip().endswith(";"):
            stack.append([m.group(7), n, depth, False])
        for c in text:
            if c not in "{}":
                continue
            depth += 1 if c == "{" else -1
            if c == "{" and stack and depth == stack[-1][2] + 1:
                stack[-1][3] = True
            while stack and stack[-1][3] and depth == stack[-1][2]:
                name, start, _, _ = stack.pop()
                if n - start + 1 > FN_LIMIT:
                    found.append(f"{path}:{start}: fn {name} is {n - start + 1} lines (limit {FN_LIMIT})")
    return found


def main(root):
    breaches = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for f in sorted(files):
            if not f.endswith(".rs") or f == "tests.rs" or f == "build.rs":
                continue
            path = os.path.relpath(os.path.join(dirpath, f), root)
            with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                lines = fh.read().split("\n")
            prod = production_lines(lines)
            # Production lines: the file less its `#[cfg(test)]` items.
            count = len(prod) - (1 if prod and prod[-1][1] == "" and not lines[-1] else 0)
            limit = MAIN_LIMIT if f == "main.rs" and "/src/" in f"/{path}" and "bin/" not in path else FILE_LIMIT
            if count > limit:
                breaches.append(f"{path}: {count} lines (limit {limit})")
            breaches.extend(long_functions(path, prod))
    for b in breaches:
        print(b)
    print(f"sizes: {len(breaches)} breach(es)")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
