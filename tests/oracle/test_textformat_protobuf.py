"""netsurg's text-format reader and writer against Google's protobuf
(Debian's python3-protobuf, with our src/format/caffe.proto compiled by
protoc at test time), an independent parser of the same format.

Two channels from a prototxt to values protobuf can read:
- text: `netsurg upgrade` reads a current-format prototxt and writes it again
  (our reader, then our writer); protobuf parses what we wrote;
- binary: `netsurg init` reads the prototxt and stores its definition in the
  caffemodel through protobuf-c's encoder; protobuf decodes it (our reader
  alone).
Both must equal protobuf's parse of the original, bit for bit (serialized
deterministically, so -0.0 and 0.0 differ). Inputs: every spelling of
numbers that protobuf's text format accepts (exponents, -0.0, inf, nan, 'f'
suffixes, hex and octal integers, the int64 and uint32 limits), denormal and
random float32 bit patterns, string escapes (\\n \\t \\x41
\\101 \\" \\' \\\\, adjacent strings, UTF-8 as protobuf writes it: octal
escapes or as is; not NUL, which protobuf-c's C strings cannot hold), and
every current-format prototxt of ../shared.

Skipped without python3-protobuf or protoc (protobuf-compiler).
"""
import glob
import importlib
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
from nscli import CLI, SHARED, run

try:
    import numpy as np
    from google.protobuf import text_format
except ImportError:  # pragma: no cover
    np = text_format = None

PROTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "format", "caffe.proto")
PROTOTXT = os.path.join(SHARED, "data", "prototxt")

NUMBERS = r"""# every number spelling protobuf's text format accepts
name: "numbers"
force_backward: t
layer {
  name: "data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 2 } }
  eltwise_param { coeff: 1e10 coeff: -0.0 coeff: inf coeff: -inf coeff: nan coeff: 1.5f
                  coeff: 1. coeff: .5 coeff: -1E-3 coeff: 1e+3 coeff: 1e-45 coeff: 1.4e-45
                  coeff: 1.17549435e-38 coeff: 3.4028235e38 coeff: 0.1 coeff: 16777217
                  coeff: -Infinity coeff: 7 coeff: -0 coeff: 2.5e-320 coeff: 1e-50 }
  convolution_param { pad: 0x1F pad: 0X1f pad: 017 pad: 0 pad: 4294967295 kernel_size: 00
                      group: 0xFFFFFFFF }
  dummy_data_param { shape { dim: 9223372036854775807 dim: -9223372036854775808 dim: -0x10
                             dim: 0x7fffffffffffffff dim: -0 dim: 0777 } }
  python_param { module: "a\nb\tc\x41\101\"q\'\\" layer: 'single "quoted"'
                 param_str: "con" 'cat' "enated" }
  pooling_param { pool: 1 }
  relu_param { negative_slope: 0.01 engine: CUDNN }
}
debug_info: True
"""


def compile_caffe_proto(out):
    """caffe_pb2 from our caffe.proto, without its protobuf-c options (they
    only rename C struct members) and so without their import."""
    with open(PROTO) as f:
        lines = [l for l in f if 'import "protobuf-c/' not in l and "option (pb_c_msg)" not in l]
    with open(os.path.join(out, "caffe.proto"), "w") as f:
        f.writelines(lines)
    subprocess.run(["protoc", "--python_out=" + out, "-I" + out, os.path.join(out, "caffe.proto")],
                   check=True, capture_output=True)
    sys.path.insert(0, out)
    try:
        return importlib.import_module("caffe_pb2")
    finally:
        sys.path.remove(out)


def as_bytes(msg):
    return msg.SerializeToString(deterministic=True)


def first_difference(got, want):
    """The first lines where the two messages' texts differ (9 digits: every
    float32 apart, and -0 apart from 0), for the failure message."""
    lines = [text_format.MessageToString(m, float_format=".9g").splitlines() for m in (got, want)]
    for i, (a, b) in enumerate(zip(*lines)):
        if a != b:
            return "line %d: netsurg gives %r, protobuf %r" % (i + 1, a.strip(), b.strip())
    return "%d lines against %d" % tuple(len(l) for l in lines)


@unittest.skipIf(text_format is None, "python3-protobuf / numpy not installed")
@unittest.skipIf(shutil.which("protoc") is None, "protoc (protobuf-compiler) not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class TextFormatAgainstProtobuf(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="netsurg-pb-")
        cls.pb = compile_caffe_proto(cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def parse(self, text):
        return text_format.Parse(text, self.pb.NetParameter())

    def through_text(self, src):
        """protobuf's parse of what `netsurg upgrade` writes for SRC."""
        out = self.path("written.prototxt")
        run("upgrade", src, out)
        with open(out) as f:
            return self.parse(f.read())

    def through_binary(self, src):
        """protobuf's decoding of the definition `netsurg init` stores for SRC."""
        out = self.path("defined.caffemodel")
        run("init", src, "--out", out)
        msg = self.pb.NetParameter()
        with open(out, "rb") as f:
            msg.ParseFromString(f.read())
        for l in msg.layer:
            del l.blobs[:]  # init's weights; the definition is what was read
        return msg

    def check_both_channels(self, text):
        src = self.path("source.prototxt")
        with open(src, "w") as f:
            f.write(text)
        want = self.parse(text)
        for channel in (self.through_text, self.through_binary):
            got = channel(src)
            if as_bytes(got) != as_bytes(want):
                self.fail("%s: %s" % (channel.__name__, first_difference(got, want)))
        return want

    def test_number_spellings(self):
        want = self.check_both_channels(NUMBERS)
        # protobuf read the spellings as meant, so agreeing with it means something
        l = want.layer[0]
        c = list(l.eltwise_param.coeff)
        self.assertEqual(c[0], 1e10)
        self.assertEqual(math.copysign(1, c[1]), -1.0)
        self.assertEqual(c[2:4], [math.inf, -math.inf])
        self.assertTrue(math.isnan(c[4]))
        self.assertEqual(c[10], struct.unpack("<f", struct.pack("<I", 1))[0])  # smallest denormal
        self.assertEqual(c[15], 16777216)  # 2^24 + 1 rounds to even in float32
        self.assertEqual(c[19:21], [0.0, 0.0])  # below half the smallest denormal
        self.assertEqual(list(l.convolution_param.pad), [31, 31, 15, 0, 4294967295])
        self.assertEqual(list(l.dummy_data_param.shape[0].dim),
                         [2**63 - 1, -2**63, -16, 2**63 - 1, 0, 511])
        self.assertEqual(l.python_param.module, "a\nb\tcAA\"q'\\")
        self.assertEqual(l.python_param.param_str, "concatenated")
        self.assertEqual(l.pooling_param.pool, self.pb.PoolingParameter.AVE)

    def test_float32_bit_patterns(self):
        # every exponent, denormals included, as protobuf writes them (the
        # shortest text that reads back) and as 17 significant digits (our
        # reader must round them to float32 as protobuf does)
        rng = np.random.default_rng(20)
        bits = rng.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32)
        bits = bits[(bits & 0x7F800000) != 0x7F800000]  # NaNs and infinities: test above
        bits[:8] = [1, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x80000001, 0x3DCCCCCD, 0x80000000, 0x33800000]
        values = bits.view(np.float32)
        for how, spell in (("shortest", None), ("17 digits", "%.17g")):
            with self.subTest(how=how):
                msg = self.pb.NetParameter(name="floats")
                layer = msg.layer.add(name="data", type="Input", top=["data"])
                layer.input_param.shape.add(dim=[1])
                layer.eltwise_param.coeff.extend(values.tolist())
                text = text_format.MessageToString(msg)
                if spell:
                    text = text_format.MessageToString(msg, float_format=".17g")
                want = self.check_both_channels(text)
                got = np.array(want.layer[0].eltwise_param.coeff, np.float32)
                self.assertTrue(np.array_equal(got.view(np.uint32), bits), "protobuf's own round trip")

    def test_long_decimals(self):
        # decimals between floats, 13 to 20 digits, exponents -45..38: both
        # readers round the decimal to double and the double to float32
        rng = np.random.default_rng(22)
        coeffs = []
        for _ in range(1500):
            digits = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(13, 21))))
            sign = "-" if rng.random() < 0.5 else ""
            coeffs.append("coeff: %s%s.%se%d" % (sign, digits[0], digits[1:], rng.integers(-45, 39)))
        text = ('name: "decimals" layer { name: "data" type: "Input" top: "data" '
                'input_param { shape { dim: 1 } } eltwise_param { %s } }' % " ".join(coeffs))
        got = self.check_both_channels(text).layer[0].eltwise_param.coeff
        self.assertEqual(len(got), 1500)

    def test_string_escapes(self):
        strings = ["plain", "", "tab\there", "new\nline", "quote\"s and 'apostrophes'", "back\\slash",
                   "bell\a vt\v ff\f cr\r bs\b del\x7f", "caf\u00e9 \u4e2d\u6587 \U0001F600",
                   "".join(chr(c) for c in range(1, 128))]
        for as_utf8 in (False, True):
            if as_utf8:  # protobuf then writes control characters raw, and a
                # file with those is binary to netsurg, as to Caffe's tools
                strings = ["".join(c for c in s if c >= " " or c in "\t\n\r") for s in strings]
            msg = self.pb.NetParameter(name="strings")
            layer = msg.layer.add(name="data", type="Input", top=["data"])
            layer.input_param.shape.add(dim=[1])
            msg.state.stage.extend(strings)  # NetState.stage: repeated, and no layer has rules
            with self.subTest(as_utf8=as_utf8):
                want = self.check_both_channels(text_format.MessageToString(msg, as_utf8=as_utf8))
                self.assertEqual(list(want.state.stage), strings)
        # escapes protobuf reads but never writes (not \u nor \?: this
        # protobuf reads \u00e9 as the byte 0xe9 and keeps the backslash of
        # \?, where C++ protobuf, Caffe's, reads UTF-8 and '?', as we do)
        text = ('name: "\\x41\\x4a\\101\\112\\303\\251" layer { name: "d" type: "Input" top: "d" '
                'input_param { shape { dim: 1 } } }')
        self.assertEqual(self.check_both_channels(text).name, "AJAJ\u00e9")

    @unittest.skipIf(not os.path.isdir(PROTOTXT), "../shared prototxts absent")
    def test_shared_prototxts(self):
        # the nets upgrade leaves as they are (current format); their values
        # through our reader and writer equal protobuf's
        compared = 0
        for f in sorted(glob.glob(os.path.join(PROTOTXT, "*", "*.prototxt"))):
            with open(f) as fh:
                text = fh.read()
            try:
                want = self.parse(text)
            except text_format.ParseError:
                continue  # V0 and fork files that our caffe.proto does not describe
            out = self.path("written.prototxt")
            p = subprocess.run([CLI, "upgrade", f, out], capture_output=True, text=True)
            if p.returncode != 0 or "already current" not in p.stdout + p.stderr:
                continue  # refused (wild/ forks) or changed by the upgrade: test_corpus_cli
            with self.subTest(f=os.path.relpath(f, PROTOTXT)):
                with open(out) as fh:
                    got = self.parse(fh.read())
                if as_bytes(got) != as_bytes(want):
                    self.fail(first_difference(got, want))
                compared += 1
        self.assertGreater(compared, 30)


if __name__ == "__main__":
    unittest.main()
