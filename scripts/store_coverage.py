#!/usr/bin/env python3
"""Which public store methods the tests reach (issue #25): for each `pub async fn` / `pub fn`
on the store (crates/store/src), whether the store's conformance suite calls it directly
(crates/store/tests) and whether the server calls it (crates/server/src, whose HTTP tests
run on both backends). Prints the counts and, with --list, the methods neither reaches.

Usage: scripts/store_coverage.py [--list]
"""

import os
import re
import sys

root = os.path.join(os.path.dirname(__file__), "..")


def read_all(folder):
    text = []
    for dirpath, _, files in os.walk(os.path.join(root, folder)):
        for f in files:
            if f.endswith(".rs"):
                text.append(open(os.path.join(dirpath, f)).read())
    return "\n".join(text)


methods = set()
for dirpath, _, files in os.walk(os.path.join(root, "crates/store/src")):
    for f in files:
        if not f.endswith(".rs"):
            continue
        src = open(os.path.join(dirpath, f)).read()
        # Methods of `impl Store { … }` blocks (each ends at the first unindented `}`).
        for block in re.finditer(r"\nimpl Store \{\n(.*?)\n\}", src, flags=re.S):
            for m in re.finditer(r"\n    pub (?:async )?fn (\w+)", "\n" + block.group(1)):
                methods.add(m.group(1))
store_tests = read_all("crates/store/tests")
server = read_all("crates/server/src") + read_all("crates/httpmw/src") + read_all("crates/oauth2/src")
server_tests = read_all("crates/server/tests")


def called(name, text):
    return re.search(r"\.\s*" + re.escape(name) + r"\s*(?:::<[^>]*>)?\(", text) is not None


direct = {m for m in methods if called(m, store_tests)}
through_server = {m for m in methods if called(m, server) or called(m, server_tests)}
neither = sorted(methods - direct - through_server)
print(
    f"{len(methods)} public store methods: {len(direct)} called by the store's conformance suite, "
    f"{len(through_server - direct)} more only through the server (its HTTP tests run on both backends), "
    f"{len(neither)} by neither"
)
if "--list" in sys.argv:
    for m in neither:
        print(f"  not reached: {m}")
