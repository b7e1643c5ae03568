#!/usr/bin/env python3
"""Print the failed tests of a pytest JUnit XML report, briefly.

`make molecule` calls this after a scenario fails, so the last lines of a CI log
name the failed tests and their assertion messages instead of molecule's
destroy output (the full tracebacks stay above, in the verify step).
Usage: test-failures.py REPORT.xml
"""
import sys
import xml.etree.ElementTree as ET


MAX_LINES = 6  # assertion lines shown per failed test


def main(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        print(f"no verifier report ({exc}): the scenario failed before or outside its tests")
        return
    cases = list(root.iter("testcase"))
    failed = []
    for case in cases:
        for kind in ("failure", "error"):
            node = case.find(kind)
            if node is not None:
                failed.append((kind, case, node))
    print(f"== verifier: {len(failed)} of {len(cases)} tests failed or errored ({path})")
    for kind, case, node in failed:
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        print(f"{kind.upper()} {name} ({float(case.get('time') or 0):.0f} s)")
        # The message attribute is pytest's one-line summary; the text holds the
        # traceback, whose "E " lines are the assertion and its explanation.
        lines = [line[1:].strip() for line in (node.text or "").splitlines() if line.startswith("E ")]
        lines = [line for line in lines if line] or [(node.get("message") or "").strip()]
        for line in lines[:MAX_LINES]:
            print(f"    {line[:240]}")


if __name__ == "__main__":
    main(sys.argv[1])
