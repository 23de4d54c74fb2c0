"""The fork messages of src/format/caffe.proto against OpenCV 4.6's own
schema for them: libopencv_dnn carries its compiled opencv-caffe.proto (a
serialized FileDescriptorProto), which OpenCV merged from SSD, Fast R-CNN and
R-FCN and uses to read those models.  Every field OpenCV declares in these
messages must be in ours with the same number, type and label, unless listed
in KNOWN_DIFFERENCES with the reason (each one a documented clash in
caffe.proto).  Ours is compiled by protoc-c --descriptor_set_out, the same
compiler the build uses.  Skipped without google.protobuf, protoc-c or
OpenCV's library.
"""
import glob
import os
import subprocess
import tempfile
import unittest

try:
    from google.protobuf import descriptor_pb2
except ImportError:  # python3-protobuf absent
    descriptor_pb2 = None

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPENCV_DNN = sorted(glob.glob("/usr/lib/*/libopencv_dnn.so.4*"))

# OpenCV's message name -> ours (SSD's name for the Normalize layer's).
MESSAGES = {
    "PermuteParameter": "PermuteParameter",
    "NormalizeBBoxParameter": "NormalizeParameter",
    "PriorBoxParameter": "PriorBoxParameter",
    "DetectionOutputParameter": "DetectionOutputParameter",
    "NonMaximumSuppressionParameter": "NonMaximumSuppressionParameter",
    "SaveOutputParameter": "SaveOutputParameter",
    "ROIPoolingParameter": "ROIPoolingParameter",
    "PSROIPoolingParameter": "PSROIPoolingParameter",
    "ProposalParameter": "ProposalParameter",
    "PoolingParameter": "PoolingParameter",
}

# (message, field) -> why ours differs from OpenCV's on purpose.
KNOWN_DIFFERENCES = {
    ("DetectionOutputParameter", "normalized_bbox"): "10 is SSD's visualize",
    ("PoolingParameter", "ceil_mode"): "13 is BVLC master's round_mode",
    ("PSROIPoolingParameter", "spatial_scale"): "optional here, R-FCN's required",
    ("PSROIPoolingParameter", "output_dim"): "optional here, R-FCN's required",
    ("PSROIPoolingParameter", "group_size"): "optional here, R-FCN's required",
}

# OpenCV's LayerParameter numbers that are ours too (the others clash with
# BVLC post-1.0 or SSD and are documented in caffe.proto).
SAME_LAYER_NUMBERS = ["roi_pooling_param"]


def opencv_schema(path):
    """OpenCV's FileDescriptorProto, cut out of the library at its known
    first field (name: "opencv-caffe.proto") and ended where the top-level
    fields of a FileDescriptorProto stop."""
    with open(path, "rb") as f:
        data = f.read()
    start = data.find(b"\n\x12opencv-caffe.proto")
    if start < 0:
        return None

    def varint(p):
        value, shift = 0, 0
        while True:
            byte = data[p]
            p += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, p

    p = start
    while p < len(data):
        tag, q = varint(p)
        field, wire = tag >> 3, tag & 7
        if not 1 <= field <= 12 or wire not in (0, 2):
            break
        value, q = varint(q)
        p = q + (value if wire == 2 else 0)
    fd = descriptor_pb2.FileDescriptorProto()
    fd.ParseFromString(data[start:p])
    return fd


def our_schema(tmp):
    out = os.path.join(tmp, "caffe.desc")
    subprocess.run(["protoc-c", "-I" + os.path.join(REPO, "src", "format"), "-I/usr/include",
                    "--descriptor_set_out=" + out,
                    os.path.join(REPO, "src", "format", "caffe.proto")], check=True)
    fds = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        fds.ParseFromString(f.read())
    return fds.file[-1]


def fields(fd, name):
    msg = [m for m in fd.message_type if m.name == name]
    return {f.name: f for f in msg[0].field} if msg else None


@unittest.skipIf(descriptor_pb2 is None, "google.protobuf absent")
@unittest.skipIf(not OPENCV_DNN, "OpenCV's libopencv_dnn absent")
@unittest.skipIf(subprocess.run(["sh", "-c", "command -v protoc-c"],
                                capture_output=True).returncode != 0, "protoc-c absent")
class ForkSchemaAgainstOpenCV(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.opencv = opencv_schema(OPENCV_DNN[-1])
        if cls.opencv is None:
            raise unittest.SkipTest("no opencv-caffe.proto descriptor in " + OPENCV_DNN[-1])
        with tempfile.TemporaryDirectory() as tmp:
            cls.ours = our_schema(tmp)

    def test_fork_messages_match_opencv(self):
        checked = 0
        for theirs_name, ours_name in MESSAGES.items():
            theirs, ours = fields(self.opencv, theirs_name), fields(self.ours, ours_name)
            self.assertIsNotNone(theirs, theirs_name)
            self.assertIsNotNone(ours, ours_name)
            for name, f in theirs.items():
                if (theirs_name, name) in KNOWN_DIFFERENCES:
                    continue
                with self.subTest(message=ours_name, field=name):
                    self.assertIn(name, ours)
                    g = ours[name]
                    self.assertEqual((g.number, g.type, g.label), (f.number, f.type, f.label))
                    checked += 1
        self.assertGreater(checked, 60)

    def test_known_differences_are_real(self):
        # a difference that went away (or a field that left) is a stale entry
        for (msg, name), why in KNOWN_DIFFERENCES.items():
            theirs = fields(self.opencv, msg)[name]
            ours = fields(self.ours, MESSAGES[msg])[name]
            self.assertNotEqual((ours.number, ours.label), (theirs.number, theirs.label), why)

    def test_shared_layer_numbers(self):
        theirs, ours = fields(self.opencv, "LayerParameter"), fields(self.ours, "LayerParameter")
        for name in SAME_LAYER_NUMBERS:
            self.assertEqual(ours[name].number, theirs[name].number, name)
        # every fork layer field OpenCV has, we have by name (text files read)
        missing = [n for n in theirs if n not in ours]
        self.assertEqual(missing, [])


if __name__ == "__main__":
    unittest.main()
