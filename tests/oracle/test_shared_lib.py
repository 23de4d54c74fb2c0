"""libnetsurg.so exports the public API and nothing else, and installs as a
library other programs can use.

The exported list (nm -D) must equal the function names declared in
include/netsurg.h, read here by a parser of our own rather than by the
compiler that decided the visibility.  `make install` into a staging
folder must give a header, both libraries, the soname links and a
netsurg.pc with which a small C program builds, links against the .so
(not the static library) and runs a net whose output is worked out by
hand.  Skipped when the library, the C compiler or pkg-config is missing.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from nscli import BUILD

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HEADER = os.path.join(ROOT, "include", "netsurg.h")
SO = os.path.join(BUILD, "libnetsurg.so")
VERSION = "0.1.0"


def header_functions(text):
    """Names of the functions the header declares: an `ns_` identifier
    followed by `(` outside comments and preprocessor lines (a function
    pointer typedef, `(*ns_x_fn)(`, has `)` after its name, and macros are
    upper case)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\b(ns_[a-z0-9_]+)\s*\(", text))


def exported_symbols(path):
    """Every symbol the library defines in its dynamic table, with its type."""
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True,
                         check=True).stdout
    return {fields[2]: fields[1] for fields in (line.split() for line in out.splitlines())
            if len(fields) == 3}


def sanitizer_flags():
    """The -fsanitize flags the library was built with (make test-asan): the
    program must be built with them too."""
    try:
        with open(os.path.join(BUILD, "obj", "compile-flags")) as f:
            return [w for w in f.read().split() if w.startswith("-fsanitize=")]
    except OSError:
        return []


# One InnerProduct whose fillers are constants: each output is
# 0.5 * (1 + 2 + 3 + 4) + 1 = 6 for the input 1, 2, 3, 4.
PROTOTXT = """name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
        inner_product_param { num_output: 2
                              weight_filler { type: "constant" value: 0.5 }
                              bias_filler { type: "constant" value: 1 } } }
"""

PROGRAM = r"""#include <netsurg.h>
#include <stdio.h>

int main(int argc, char **argv) {
  ns_ctx *ctx = ns_ctx_create();
  ns_net *net = NULL;
  if (!ctx || argc != 2) return 1;
  if (ns_net_load(ctx, argv[1], NULL, &net) != NS_OK) {
    fprintf(stderr, "%s\n", ns_ctx_error(ctx));
    ns_ctx_destroy(ctx);
    return 2;
  }
  ns_tensor x = ns_net_blob(net, ns_net_find_blob(net, "data"));
  for (int64_t i = 0; i < x.count; i++) x.data[i] = (float)(i + 1);
  int rc = ns_net_forward(ctx, net) == NS_OK ? 0 : 3;
  ns_tensor y = ns_net_blob(net, ns_net_find_blob(net, "fc"));
  for (int64_t i = 0; i < y.count && rc == 0; i++) printf("%.6g\n", y.data[i]);
  if (rc) fprintf(stderr, "%s\n", ns_ctx_error(ctx));
  ns_net_destroy(net);
  ns_ctx_destroy(ctx);
  return rc;
}
"""


@unittest.skipUnless(os.path.exists(SO), "no " + SO + " (make all)")
@unittest.skipUnless(shutil.which("nm"), "nm missing")
class ExportsOnlyThePublicApi(unittest.TestCase):
    def test_exported_functions_equal_the_header(self):
        with open(HEADER) as f:
            declared = header_functions(f.read())
        self.assertGreater(len(declared), 100)  # the parser found the API
        exported = exported_symbols(SO)
        self.assertEqual(sorted(set(exported) - declared), [],
                         "exported but not declared in include/netsurg.h")
        self.assertEqual(sorted(declared - set(exported)), [],
                         "declared in include/netsurg.h but not exported (or never defined)")
        self.assertEqual({t for t in exported.values()}, {"T"}, "only functions are exported")

    def test_soname_and_version_links(self):
        dyn = subprocess.run(["readelf", "-d", SO], capture_output=True, text=True,
                             check=True).stdout
        self.assertIn("Library soname: [libnetsurg.so.0]", dyn)
        self.assertEqual(os.readlink(SO), "libnetsurg.so.0")
        self.assertEqual(os.readlink(SO + ".0"), "libnetsurg.so." + VERSION)


@unittest.skipUnless(os.path.exists(SO), "no " + SO + " (make all)")
@unittest.skipUnless(shutil.which("cc") and shutil.which("pkg-config") and shutil.which("make"),
                     "cc, pkg-config or make missing")
class InstalledLibraryLinks(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ns_install_")
        self.addCleanup(shutil.rmtree, self.tmp)

    def install(self):
        """make install into DESTDIR=tmp/stage with PREFIX=/opt/netsurg."""
        stage = os.path.join(self.tmp, "stage")
        p = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "install",
                            "BUILD=" + os.path.relpath(os.path.abspath(BUILD), ROOT),
                            "PREFIX=/opt/netsurg",
                            "DESTDIR=" + stage], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return stage, os.path.join(stage, "opt", "netsurg")

    def test_install_lays_out_header_libraries_and_pc(self):
        _, prefix = self.install()
        lib = os.path.join(prefix, "lib")
        for path in ("include/netsurg.h", "lib/libnetsurg.a", "lib/libnetsurg.so." + VERSION,
                     "lib/pkgconfig/netsurg.pc"):
            self.assertTrue(os.path.isfile(os.path.join(prefix, path)), path)
        self.assertEqual(os.readlink(os.path.join(lib, "libnetsurg.so.0")),
                         "libnetsurg.so." + VERSION)
        self.assertEqual(os.readlink(os.path.join(lib, "libnetsurg.so")), "libnetsurg.so.0")
        with open(os.path.join(lib, "pkgconfig", "netsurg.pc")) as f:
            pc = f.read()
        # The .pc names the final PREFIX, not the staging folder.
        self.assertIn("libdir=/opt/netsurg/lib\n", pc)
        self.assertIn("Version: " + VERSION + "\n", pc)

    def test_program_builds_with_pkg_config_and_runs_on_the_so(self):
        stage, prefix = self.install()
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"),
                   PKG_CONFIG_SYSROOT_DIR=stage)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "netsurg"], env=env,
                               capture_output=True, text=True, check=True).stdout.split()
        self.assertIn("-I" + os.path.join(prefix, "include"), flags)
        src = os.path.join(self.tmp, "tiny.c")
        exe = os.path.join(self.tmp, "tiny")
        net = os.path.join(self.tmp, "tiny.prototxt")
        with open(src, "w") as f:
            f.write(PROGRAM)
        with open(net, "w") as f:
            f.write(PROTOTXT)
        cc = subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", *sanitizer_flags(), src,
                             "-o", exe, *flags], capture_output=True, text=True)
        self.assertEqual(cc.returncode, 0, cc.stderr)
        needed = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True,
                                check=True).stdout
        self.assertIn("Shared library: [libnetsurg.so.0]", needed)
        run = subprocess.run([exe, net], capture_output=True, text=True,
                             env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(prefix, "lib")))
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual([float(v) for v in run.stdout.split()], [6.0, 6.0])


if __name__ == "__main__":
    unittest.main()
