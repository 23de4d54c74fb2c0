"""`netsurg forward` on every prototxt of ../shared/data/prototxt/wild
(the Caffe forks' models as people publish them), with filler weights and
a random input (tests/oracle/wildnet.py says which): every output blob
has the size `netsurg info` gives it and is finite, and where OpenCV 4.6
reads the file and no other test already compares it, every output is
within 1e-4 of OpenCV's largest magnitude.  The big ones (about 550 MB of VGG
weights, YOLOv3's 248 MB, PSPNet at 473 x 473) run in
tests/slow/test_wild_forward_big.py;
wildnet.FILES lists each file, where it runs and what checks it, and a
file it does not list fails here until it is.
"""
import os
import unittest
from nscli import CLI
import wildnet


@unittest.skipIf(wildnet.cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(not os.path.isdir(wildnet.WILD), "../shared wild prototxts absent")
class WildForward(unittest.TestCase):
    def test_every_file_is_listed(self):
        files = {f for f in os.listdir(wildnet.WILD) if f.endswith(".prototxt")}
        self.assertEqual(files - set(wildnet.FILES), set(), "add them to wildnet.FILES")

    def test_forward_fast_files(self):
        wildnet.check_files(self, "fast")


if __name__ == "__main__":
    unittest.main()
