"""The wild/ prototxts too big for make test (tests/oracle/wildnet.FILES
marks them "slow"): VGG-16 and the Faster R-CNN VGG16 (about 550 MB of
weights each, every output compared with OpenCV 4.6; for Faster R-CNN
OpenCV reads a copy with the Python proposal layer written as its
Proposal, wildnet.for_opencv), YOLOv3 at 416 x 416 (248 MB) and PSPNet at
473 x 473 (finite outputs of the shaped size; OpenCV cannot read
either).  The same checks as tests/oracle/test_wild_forward.py.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
from nscli import CLI  # noqa: E402
import wildnet  # noqa: E402


@unittest.skipIf(wildnet.cv2 is None, "python3-opencv / numpy not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(not os.path.isdir(wildnet.WILD), "../shared wild prototxts absent")
class WildForwardSlow(unittest.TestCase):
    def test_forward_slow_files(self):
        wildnet.check_files(self, "slow")


if __name__ == "__main__":
    unittest.main()
