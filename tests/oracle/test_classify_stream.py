"""`netsurg classify` over many images (--list, directories, --batch,
--output, --resume, --shard, --out-dir) against the one-image-at-a-time
`classify --json` of the same images: the same bytes, line for line.
The net is the Fashion-MNIST LeNet of models/ cast to 56x56 (an 8x8 map);
the images are generated here.  A run killed with SIGKILL in the middle and
resumed, shards merged, bad images and a cut last line are each checked for
every image's line exactly once, in input order."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import numpy as np

from nscli import CLI

try:
    import cv2
except ImportError:
    cv2 = None

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL = os.path.join(ROOT, "models", "fmnist_lenet")
RAW = ["--raw-scale", "1"]  # the LeNet was trained on [0, 1] pixels


def classify(*args, stdin=None, ok=(0,)):
    p = subprocess.run([CLI, "classify", *args], capture_output=True, text=True, input=stdin)
    if p.returncode not in ok:
        raise AssertionError("netsurg classify %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                                   p.stderr))
    return p


@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
@unittest.skipIf(cv2 is None, "no cv2 (scripts/install-deps.sh test)")
class StreamingClassify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="netsurg-stream-")
        base = os.path.join(cls.tmp, "fm")
        subprocess.run([CLI, "fcn", os.path.join(MODEL, "deploy.prototxt"),
                        os.path.join(MODEL, "fmnist_lenet.caffemodel"), "--size", "56x56",
                        "--out", base], check=True, capture_output=True)
        cls.net = [base + ".prototxt", base + ".caffemodel"]
        cls.dir = os.path.join(cls.tmp, "imgs")
        os.mkdir(cls.dir)
        rng = np.random.RandomState(17)
        cls.images = []
        for i in range(24):  # PNG and JPEG, grey and colour, other sizes (resized)
            size = (56, 56) if i % 3 else (70, 90)
            im = rng.randint(0, 256, size + ((3,) if i % 4 == 1 else ()), np.uint8)
            path = os.path.join(cls.dir, "im%03d.%s" % (i, "jpg" if i % 5 == 2 else "png"))
            cv2.imwrite(path, im)
            cls.images.append(path)
        cls.named = classify(*cls.net, *cls.images, *RAW, "--json").stdout

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write_list(self, name, paths):
        with open(self.path(name), "w") as f:
            f.write("".join(p + "\n" for p in paths))
        return self.path(name)

    def test_list_batches_equal_named_images(self):
        listing = self.write_list("all.txt", self.images)
        for batch in ("1", "5", "24"):
            with self.subTest(batch=batch):
                out = self.path("b%s.jsonl" % batch)
                classify(*self.net, "--list", listing, "--batch", batch, "--output", out, *RAW)
                with open(out) as f:
                    self.assertEqual(f.read(), self.named)

    def test_options_after_list(self):
        # classify's own options after the streaming ones (a regression:
        # --top after --list fell back to the named-images path and did nothing)
        listing = self.write_list("top.txt", self.images[:4])
        want = classify(*self.net, *self.images[:4], *RAW, "--json", "--top", "2").stdout
        got = classify(*self.net, "--list", listing, "--batch", "2", "--top", "2", *RAW).stdout
        self.assertEqual(got, want)

    def test_stdin_list_and_directory(self):
        got = classify(*self.net, "--list", "-", *RAW, "--batch", "3",
                       stdin="".join(p + "\n" for p in self.images)).stdout
        self.assertEqual(got, self.named)
        got = classify(*self.net, self.dir, *RAW, "--batch", "4").stdout  # sorted by name
        self.assertEqual(got, self.named)

    def test_shards_merge_into_one_run(self):
        listing = self.write_list("shard.txt", self.images)
        outs = []
        for k in range(5):
            outs.append(self.path("shard.%d" % k))
            classify(*self.net, "--list", listing, "--shard", "%d/5" % k, "--batch", "2",
                     "--output", outs[-1], *RAW)
        shards = [open(o).read().splitlines(True) for o in outs]
        self.assertEqual(sum(map(len, shards)), len(self.images))
        merged = "".join(shards[i % 5][i // 5] for i in range(len(self.images)))
        self.assertEqual(merged, self.named)  # line i of the run is line i//5 of shard i%5
        p = subprocess.run(["paste", "-d", "\\n", *outs], capture_output=True, text=True)
        self.assertEqual("".join(l for l in p.stdout.splitlines(True) if l != "\n"), self.named)
        for bad in ("5/5", "-1/3", "1", "0/0"):
            with self.subTest(shard=bad):
                p = classify(*self.net, "--list", listing, "--shard", bad, ok=(1,))
                self.assertIn("--shard", p.stderr)

    def test_bad_images_get_error_lines(self):
        truncated = self.path("truncated.png")
        with open(self.images[1], "rb") as f:
            data = f.read()
        with open(truncated, "wb") as f:
            f.write(data[: len(data) // 2])
        text = self.path("text.jpg")
        with open(text, "w") as f:
            f.write("not an image\n")
        missing = self.path("missing.png")
        paths = [self.images[0], missing, self.images[2], truncated, text, self.images[3]]
        listing = self.write_list("bad.txt", paths)
        p = classify(*self.net, "--list", listing, "--batch", "2", *RAW, ok=(8,))
        lines = p.stdout.splitlines(True)
        self.assertEqual(len(lines), len(paths))
        records = [json.loads(l) for l in lines]
        self.assertEqual([r["image"] for r in records], paths)
        for i in (1, 3, 4):
            self.assertEqual(set(records[i]), {"image", "error"}, paths[i])
            self.assertIn(os.path.basename(paths[i]), records[i]["error"])
        good = self.named.splitlines(True)
        self.assertEqual([lines[0], lines[2], lines[5]], good[0:1] + good[2:4])
        self.assertIn("3 failed", p.stderr)
        ok = classify(*self.net, self.images[0], "--list", "-", *RAW, stdin="")
        self.assertEqual(ok.returncode, 0)

    def full_run(self, listing, out):
        classify(*self.net, "--list", listing, "--batch", "4", "--output", out, *RAW)
        with open(out) as f:
            return f.read()

    def test_cut_last_line_is_redone(self):
        listing = self.write_list("cut.txt", self.images)
        whole = self.full_run(listing, self.path("cut-full.jsonl"))
        out = self.path("cut.jsonl")
        lines = whole.splitlines(True)
        with open(out, "w") as f:  # 7 lines and half of the 8th: a kill mid-write
            f.write("".join(lines[:7]) + lines[7][: len(lines[7]) // 2])
        p = classify(*self.net, "--list", listing, "--batch", "4", "--output", out, "--resume",
                     *RAW)
        self.assertIn("cut", p.stderr)
        with open(out) as f:
            self.assertEqual(f.read(), whole)
        with open(out, "w") as f:  # another list's output is refused, not appended to
            f.write(lines[1])
        p = classify(*self.net, "--list", listing, "--output", out, "--resume", *RAW, ok=(1,))
        self.assertIn("line 1", p.stderr)

    def test_kill_then_resume(self):
        # Enough larger images (resized with antialiasing) that the run is
        # still going when the test kills it.
        rng = np.random.RandomState(3)
        paths = []
        big = os.path.join(self.tmp, "big")
        os.mkdir(big)
        for i in range(300):
            paths.append(os.path.join(big, "b%03d.png" % i))
            cv2.imwrite(paths[-1], rng.randint(0, 256, (280, 280), np.uint8))
        listing = self.write_list("kill.txt", paths)
        whole = self.full_run(listing, self.path("kill-full.jsonl"))
        out = self.path("kill.jsonl")
        args = [CLI, "classify", *self.net, "--list", listing, "--batch", "4", "--output", out,
                "--threads", "1", "--decoders", "1", *RAW]
        proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
        killed_at = None
        while proc.poll() is None:
            if os.path.exists(out) and os.path.getsize(out) > 20 * 1000:
                proc.send_signal(signal.SIGKILL)
                killed_at = os.path.getsize(out)
                break
            time.sleep(0.002)
        proc.wait()
        self.assertIsNotNone(killed_at, "the run ended before the test could kill it")
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        with open(out) as f:
            kept = f.read()
        self.assertLess(len(kept), len(whole))
        p = subprocess.run(args + ["--resume"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("done before", p.stderr)
        with open(out) as f:
            self.assertEqual(f.read(), whole)  # every image once, in order

    def test_out_dir_saves_each_prob(self):
        d = self.path("npy")
        os.mkdir(d)
        out = classify(*self.net, *self.images[:3], "--out-dir", d, *RAW).stdout
        records = [json.loads(l) for l in out.splitlines()]
        for i, r in enumerate(records):
            stem = os.path.splitext(os.path.basename(self.images[i]))[0]
            prob = np.load(os.path.join(d, "%08d_%s.npy" % (i, stem)))
            self.assertEqual(prob.shape, (1, 10, 8, 8))
            np.testing.assert_array_equal(prob[0].argmax(0), np.array(r["argmax"]))
            np.testing.assert_allclose(prob[0].max(0), np.array(r["confidence"]), rtol=1e-5)


    def test_save_blob_of_an_intermediate(self):
        """--save-blob may name an intermediate blob: it must not share its
        storage with a later one (classify reuses activations otherwise).
        Checked against netsurg forward on the preprocessed input classify
        saved (--save-blob data)."""
        saved = {}
        for blob in ("data", "conv1"):
            d = self.path("save-" + blob)
            os.mkdir(d)
            classify(*self.net, *self.images[:3], "--out-dir", d, "--save-blob", blob, *RAW)
            saved[blob] = sorted(os.path.join(d, f) for f in os.listdir(d))
        for data, conv1 in zip(saved["data"], saved["conv1"]):
            ref = data + ".conv1.npy"
            subprocess.run([CLI, "forward", *self.net, "--input", "data=" + data,
                            "--output", "conv1=" + ref], check=True, capture_output=True)
            np.testing.assert_allclose(np.load(conv1), np.load(ref), rtol=1e-6, atol=1e-6)

if __name__ == "__main__":
    unittest.main()
