"""What the oracle tests share: where the CLI and ../shared are, and a
runner that fails the test with netsurg's own output."""
import os
import subprocess

BUILD = os.environ.get("NS_BUILD", "build")
CLI = os.path.join(BUILD, "netsurg")
SHARED = os.environ.get("NS_SHARED", "../shared")


def run(*args):
    """netsurg ARGS...; an AssertionError with its output unless it exits 0."""
    p = subprocess.run([CLI, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("netsurg %s failed (%d): %s%s" % (" ".join(args), p.returncode,
                                                               p.stdout, p.stderr))
    return p


def sanitized():
    """True when the library was built with -fsanitize (make test-asan): the
    ASan runtime must be the first library a process loads, so python3
    cannot load that libnetsurg.so."""
    try:
        with open(os.path.join(BUILD, "obj", "compile-flags")) as f:
            return "-fsanitize=" in f.read()
    except OSError:
        return False
