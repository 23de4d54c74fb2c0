"""Runs one oracle test file with unittest and counts what scripts/run-tests.sh
needs, in lines it can read without guessing:

    SKIP <test id>: <reason>            one per skipped test or subtest
    COUNTS <passed> <failed> <skipped>  last line

Each subtest counts as one check (a test with 12 subtests counts 12), and a
test without subtests as one; a test that fails outside its subtests (after
them, or before the first) adds one failure. unittest's own "Ran N tests"
counts tests while its failures count subtests, so its summary cannot be
subtracted from.

Usage: /usr/bin/python3 tests/oracle/runner.py tests/oracle/test_x.py
"""
import importlib.util
import os
import sys
import unittest


class CountingResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = self.failed = 0
        self.skip_lines = []
        self.with_subtests = set()

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        self.with_subtests.add(test.id())
        if err is None:
            self.passed += 1
        else:
            self.failed += 1  # unittest records it in failures/errors too

    def addSuccess(self, test):
        super().addSuccess(test)
        if test.id() not in self.with_subtests:
            self.passed += 1

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.failed += 1

    def addError(self, test, err):
        super().addError(test, err)
        self.failed += 1

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        parent = getattr(test, "test_case", None)  # a skipped subtest
        if parent is not None:
            self.with_subtests.add(parent.id())
        self.skip_lines.append("SKIP %s: %s" % (test.id(), reason))

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.failed += 1

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.passed += 1


def load(path):
    here = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, here)  # for nscli, as when the file runs as a script
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return unittest.defaultTestLoader.loadTestsFromModule(module)


def main(path):
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=CountingResult)
    result = runner.run(load(path))
    for line in result.skip_lines:
        print(line)
    print("COUNTS %d %d %d" % (result.passed, result.failed, len(result.skip_lines)))
    return 0 if result.failed == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
