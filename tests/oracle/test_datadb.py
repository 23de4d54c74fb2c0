"""The Data layer (LMDB and LevelDB of Caffe Datum records) and the
convert-imageset / compute-mean verbs, against independent sources:
ImageData on the same list with the same transform (whose pixels
test_data_opencv.py checks against OpenCV), an LMDB written by Python's
own lmdb binding with Datum records from Google's protobuf (our caffe.proto
compiled by protoc), cv2.imread for the records our writer makes, numpy's
mean for compute-mean.  Hostile databases must fail with exit 2 or 4 and a
message, never crash.  Skipped without cv2/numpy/lmdb/protoc or the CLI.
"""
import os
import shutil
import subprocess
import tempfile
import unittest
from nscli import CLI

try:
    import numpy as np
    import cv2
    import lmdb
    from test_textformat_protobuf import compile_caffe_proto
except ImportError:  # pragma: no cover
    np = cv2 = lmdb = None

HAVE_PROTOC = shutil.which("protoc") is not None

DATA_NET = """layer { name: "d" type: "%(type)s" top: "data" top: "label"
  transform_param { %(transform)s }
  %(param)s }
"""


@unittest.skipIf(lmdb is None, "python3-lmdb / opencv / numpy not installed")
@unittest.skipIf(not HAVE_PROTOC, "protoc (protobuf-compiler) not installed")
@unittest.skipIf(not os.access(CLI, os.X_OK), "netsurg not built")
class DataLayerDatabases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pbdir = tempfile.mkdtemp(prefix="netsurg-pb-")
        cls.pb = compile_caffe_proto(cls.pbdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pbdir, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="netsurg-datadb-")
        rng = np.random.default_rng(11)
        yy, xx = np.mgrid[0:9, 0:11]
        self.names = []
        for i in range(5):
            img = np.stack([(yy * 9 + xx * 5 + 30 * i) % 256, (xx * 17) % 256,
                            rng.integers(0, 256, (9, 11))], axis=2).astype(np.uint8)
            name = "img%d.png" % i
            cv2.imwrite(self.path(name), img)
            self.names.append(name)
        self.labels = [3, 1, 4, 1, 5]
        with open(self.path("list.txt"), "w") as f:
            for n, l in zip(self.names, self.labels):
                f.write("%s %d\n" % (n, l))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def cli(self, *args):
        return subprocess.run([CLI, *args], capture_output=True, text=True)

    def ok(self, *args):
        p = self.cli(*args)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def forward(self, type_, param, transform=""):
        with open(self.path("net.prototxt"), "w") as f:
            f.write(DATA_NET % {"type": type_, "param": param, "transform": transform})
        p = self.cli("forward", self.path("net.prototxt"), "--output",
                     "data=" + self.path("x.npy"), "--output", "label=" + self.path("y.npy"))
        return p

    def batch(self, type_, param, transform=""):
        p = self.forward(type_, param, transform)
        self.assertEqual(p.returncode, 0, p.stderr)
        return np.load(self.path("x.npy")), np.load(self.path("y.npy"))

    def db_batch(self, db, batch=5, backend="LMDB", transform="", extra=""):
        return self.batch("Data", 'data_param { source: "%s" backend: %s batch_size: %d %s }'
                          % (db, backend, batch, extra), transform)

    def image_batch(self, batch=5, transform="", extra=""):
        return self.batch("ImageData", 'image_data_param { source: "%s" root_folder: "%s/" '
                          'batch_size: %d %s }' % (self.path("list.txt"), self.dir, batch, extra),
                          transform)

    def convert(self, *opts, db="db"):
        self.ok("convert-imageset", self.dir + "/", self.path("list.txt"), self.path(db), *opts)
        return self.path(db)

    # ---- our convert-imageset read back by our Data layer versus ImageData

    def test_lmdb_equals_imagedata(self):
        db = self.convert()
        tf = "scale: 0.5 mean_value: 10 mean_value: 20 mean_value: 30 crop_size: 7"
        x, y = self.db_batch(db, transform=tf)
        xi, yi = self.image_batch(transform=tf)
        self.assertEqual(x.shape, (5, 3, 7, 7))
        np.testing.assert_array_equal(x, xi)
        np.testing.assert_array_equal(y, self.labels)
        np.testing.assert_array_equal(yi, self.labels)

    def test_leveldb_equals_imagedata(self):
        db = self.convert("--backend", "leveldb")
        x, y = self.db_batch(db, backend="LEVELDB")
        xi, _ = self.image_batch()
        np.testing.assert_array_equal(x, xi)
        np.testing.assert_array_equal(y, self.labels)

    def test_gray_resize_equals_imagedata(self):
        db = self.convert("--gray", "--resize", "6x8")
        x, _ = self.db_batch(db)
        xi, _ = self.image_batch(extra="is_color: false new_height: 6 new_width: 8")
        self.assertEqual(x.shape, (5, 1, 6, 8))
        np.testing.assert_array_equal(x, xi)

    def test_encoded_equals_imagedata(self):
        db = self.convert("--encoded")
        x, _ = self.db_batch(db)
        xi, _ = self.image_batch()
        np.testing.assert_array_equal(x, xi)
        x, _ = self.db_batch(db, transform="force_gray: true")
        xi, _ = self.image_batch(extra="is_color: false")
        np.testing.assert_array_equal(x, xi)

    def test_records_as_caffe_writes_them(self):
        """Keys "%08d_name" by list index; raw Datums with cv2.imread's BGR
        bytes channel-major; encoded ones the file's own bytes."""
        raw, enc = self.convert(db="raw"), self.convert("--encoded", db="enc")
        with lmdb.open(raw, readonly=True) as env, env.begin() as txn:
            items = list(txn.cursor())
        self.assertEqual([k.decode() for k, _ in items],
                         ["%08d_%s" % (i, n) for i, n in enumerate(self.names)])
        for (_, v), name, label in zip(items, self.names, self.labels):
            d = self.pb.Datum.FromString(v)
            want = cv2.imread(self.path(name), cv2.IMREAD_COLOR).transpose(2, 0, 1)
            self.assertEqual((d.channels, d.height, d.width, d.label, d.encoded),
                             (3, 9, 11, label, False))
            self.assertEqual(d.data, want.tobytes())
        with lmdb.open(enc, readonly=True) as env, env.begin() as txn:
            for (_, v), name in zip(txn.cursor(), self.names):
                d = self.pb.Datum.FromString(v)
                with open(self.path(name), "rb") as f:
                    self.assertEqual(d.data, f.read())
                self.assertTrue(d.encoded)

    def test_wraps_around_and_shuffle_keeps_pairs(self):
        db = self.convert()
        _, y = self.db_batch(db, batch=7)
        np.testing.assert_array_equal(y, self.labels + self.labels[:2])
        db = self.convert("--shuffle", "--seed", "3", db="shuf")
        x, y = self.db_batch(db)
        xi, yi = self.image_batch()
        # the same (image, label) pairs in another order
        got = sorted((int(l), a.tobytes()) for a, l in zip(x, y))
        want = sorted((int(l), a.tobytes()) for a, l in zip(xi, yi))
        self.assertEqual(got, want)

    def test_rand_skip_starts_inside(self):
        """Each seed skips fewer than rand_skip records, then reads on in
        key order; over a few seeds some start past the first."""
        db = self.convert()
        with open(self.path("net.prototxt"), "w") as f:
            f.write(DATA_NET % {"type": "Data", "transform": "", "param":
                                'data_param { source: "%s" backend: LMDB batch_size: 5 '
                                'rand_skip: 4 }' % db})
        starts = set()
        for seed in range(1, 9):
            self.ok("forward", self.path("net.prototxt"), "--seed", str(seed), "--output",
                    "label=" + self.path("y.npy"))
            y = list(np.load(self.path("y.npy")))
            found = [s for s in range(4) if y == (self.labels * 2)[s:s + 5]]
            self.assertTrue(found, y)
            starts.add(found[0])
        self.assertGreater(len(starts), 1)

    # ---- an LMDB written independently

    def write_lmdb(self, name, records):
        path = self.path(name)
        with lmdb.open(path, map_size=1 << 24) as env, env.begin(write=True) as txn:
            for k, d in records:
                txn.put(k.encode(), d if isinstance(d, bytes) else d.SerializeToString())
        return path

    def test_python_lmdb_raw_float_encoded(self):
        rng = np.random.default_rng(2)
        a = rng.integers(0, 256, (2, 4, 5)).astype(np.uint8)
        b = rng.standard_normal((2, 4, 5)).astype(np.float32)
        raw = self.pb.Datum(channels=2, height=4, width=5, data=a.tobytes(), label=7)
        flt = self.pb.Datum(channels=2, height=4, width=5, label=-2)
        flt.float_data.extend(b.ravel().tolist())
        db = self.write_lmdb("py", [("a", raw), ("b", flt)])
        x, y = self.db_batch(db, batch=2, transform="scale: 0.25 mean_value: 1 mean_value: 2")
        mean = np.array([1, 2], np.float32)[:, None, None]
        np.testing.assert_allclose(x, np.stack([(a - mean) * 0.25, (b - mean) * 0.25]),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(y, [7, -2])

        img = np.random.default_rng(4).integers(0, 256, (6, 5, 3)).astype(np.uint8)
        grey = img[:, :, 0].copy()
        recs = [("c", self.pb.Datum(data=cv2.imencode(".png", img)[1].tobytes(), label=1,
                                    encoded=True)),
                ("d", self.pb.Datum(data=cv2.imencode(".png", grey)[1].tobytes(), label=2,
                                    encoded=True))]
        db = self.write_lmdb("enc", recs[:1])
        x, _ = self.db_batch(db, batch=1)
        np.testing.assert_array_equal(x[0], img.transpose(2, 0, 1))
        db = self.write_lmdb("grey", recs[1:])  # IMREAD_ANYCOLOR keeps one channel
        x, _ = self.db_batch(db, batch=1)
        np.testing.assert_array_equal(x[0], grey[None])
        x, _ = self.db_batch(db, batch=1, transform="force_color: true")
        np.testing.assert_array_equal(x[0], np.stack([grey] * 3))

    # ---- compute-mean

    def test_compute_mean_against_numpy(self):
        for backend, args in (("lmdb", ()), ("leveldb", ("--backend", "leveldb"))):
            db = self.convert(*args, db="m_" + backend)
            out = self.path("mean_%s.binaryproto" % backend)
            self.ok("compute-mean", db, out, *args)
            with open(out, "rb") as f:
                blob = self.pb.BlobProto.FromString(f.read())
            self.assertEqual((blob.num, blob.channels, blob.height, blob.width), (1, 3, 9, 11))
            imgs = np.stack([cv2.imread(self.path(n)).transpose(2, 0, 1) for n in self.names])
            np.testing.assert_allclose(np.array(blob.data).reshape(3, 9, 11),
                                       imgs.astype(np.float64).mean(0), rtol=1e-6)
        # and the Data layer's transform_param accepts it
        x, _ = self.db_batch(db, transform='mean_file: "%s"' % out, backend="LEVELDB")
        xi, _ = self.image_batch()
        np.testing.assert_allclose(x, xi - imgs.astype(np.float32).mean(0), atol=1e-4)

    # ---- hostile databases

    def assert_fails(self, p, codes, *words):
        self.assertIn(p.returncode, codes, p.stderr)
        for w in words:
            self.assertIn(w, p.stderr)
        self.assertNotIn("Sanitizer", p.stderr)

    def test_corrupt_datum(self):
        bad = [("a", b"\xff\xff\xff\xff\x0f garbage"),
               ("b", self.pb.Datum(channels=3, height=1 << 20, width=1 << 20, data=b"xx")),
               ("c", self.pb.Datum(channels=1, height=2, width=2, data=b"abc")),
               ("d", self.pb.Datum(data=b"not an image", encoded=True))]
        for i, rec in enumerate(bad):
            db = self.write_lmdb("bad%d" % i, [rec])
            p = self.forward("Data", 'data_param { source: "%s" backend: LMDB }' % db)
            self.assert_fails(p, (2, 3), "layer 'd'", "'%s'" % rec[0])
            p = self.cli("compute-mean", db, self.path("m.binaryproto"))
            self.assert_fails(p, (2, 3), "'%s'" % rec[0])
            self.assertFalse(os.path.exists(self.path("m.binaryproto")))

    def test_not_a_database(self):
        with open(self.path("plain"), "wb") as f:
            f.write(b"just bytes" * 100)
        os.mkdir(self.path("fake"))
        with open(self.path("fake/data.mdb"), "wb") as f:
            f.write(b"\0" * 8192)
        for src, backend, code in (("plain", "LMDB", 2), ("fake", "LMDB", 2),
                                   ("missing", "LMDB", 4), ("plain", "LEVELDB", 2)):
            p = self.forward("Data", 'data_param { source: "%s" backend: %s }'
                             % (self.path(src), backend))
            self.assert_fails(p, (code,), "layer 'd'", src)
        p = self.cli("compute-mean", self.path("plain"), self.path("m.binaryproto"))
        self.assert_fails(p, (2,), "plain")
        empty = self.write_lmdb("empty", [])
        p = self.forward("Data", 'data_param { source: "%s" backend: LMDB }' % empty)
        self.assert_fails(p, (2,), "no records")

    def test_cli_refusals(self):
        p = self.cli("convert-imageset", self.dir + "/", self.path("list.txt"), self.path("e"),
                     "--encoded", "--resize", "4x4")
        self.assert_fails(p, (3,), "resize")
        p = self.cli("convert-imageset", self.dir + "/", self.path("list.txt"), self.path("e"),
                     "--resize", "4")
        self.assert_fails(p, (1,), "HxW")
        self.convert(db="twice")
        p = self.cli("convert-imageset", self.dir + "/", self.path("list.txt"),
                     self.path("twice"))
        self.assert_fails(p, (4,), "twice")
        with open(self.path("list.txt"), "a") as f:
            f.write("nothere.png 1\n")
        p = self.cli("convert-imageset", self.dir + "/", self.path("list.txt"), self.path("n"))
        self.assert_fails(p, (4,), "nothere.png")
        for verb in ("convert-imageset", "compute-mean"):
            p = self.ok(verb, "--help")
            self.assertIn("usage: netsurg " + verb, p.stdout)

    # ---- extract-features: Caffe's tools/extract_features

    def feature_net(self, db):
        """A Data layer (batch 2) of db and an InnerProduct on it, with
        weights drawn by netsurg init."""
        with open(self.path("feat.prototxt"), "w") as f:
            f.write(DATA_NET % {"type": "Data", "transform": "scale: 0.01", "param":
                               'data_param { source: "%s" backend: LMDB batch_size: 2 }' % db})
            f.write('layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"\n'
                    '  inner_product_param { num_output: 3 weight_filler { type: "gaussian" '
                    'std: 0.1 } bias_filler { type: "constant" value: 0.5 } } }\n')
        self.ok("init", self.path("feat.prototxt"), "--out", self.path("feat.caffemodel"))
        return self.path("feat.prototxt"), self.path("feat.caffemodel")

    def test_extract_features(self):
        """Two batches of 2: records 0..3 under Caffe's keys, the data
        blob's the images as cv2 reads them (scaled), ip's .npy rows 0-1
        the blob `netsurg forward` gives for the same net and weights."""
        net, weights = self.feature_net(self.convert())
        self.ok("extract-features", net, weights, "data,ip",
                self.path("data_feat") + "," + self.path("ip.npy"), "2", "lmdb")
        with lmdb.open(self.path("data_feat"), readonly=True) as env, env.begin() as txn:
            items = list(txn.cursor())
        self.assertEqual([k.decode() for k, _ in items], ["%010d" % i for i in range(4)])
        for (_, v), name in zip(items, self.names):
            d = self.pb.Datum.FromString(v)
            self.assertEqual((d.channels, d.height, d.width, len(d.data)), (3, 9, 11, 0))
            want = cv2.imread(self.path(name), cv2.IMREAD_COLOR).transpose(2, 0, 1) * 0.01
            np.testing.assert_allclose(np.array(d.float_data), want.ravel(), rtol=1e-6)
        ip = np.load(self.path("ip.npy"))
        self.assertEqual(ip.shape, (4, 3))
        self.ok("forward", net, weights, "--output", "ip=" + self.path("fwd.npy"))
        np.testing.assert_array_equal(ip[:2], np.load(self.path("fwd.npy")))
        self.assertFalse(np.array_equal(ip[:2], ip[2:]))  # the second batch is new images

    def test_extract_features_leveldb_reads_back(self):
        """A LevelDB of features read back by our Data layer (float_data
        records) gives the .npy of the same blob."""
        net, weights = self.feature_net(self.convert())
        self.ok("extract-features", net, weights, "ip,ip", self.path("ipdb") + ","
                + self.path("ip.npy"), "2", "leveldb")
        x, _ = self.db_batch(self.path("ipdb"), batch=4, backend="LEVELDB")
        self.assertEqual(x.shape, (4, 3, 1, 1))
        np.testing.assert_array_equal(x.reshape(4, 3), np.load(self.path("ip.npy")))
        for args, code, words in [
                (("data,ip", self.path("a"), "1"), 1, "pairs"),
                (("data", self.path("a"), "0"), 1, "at least 1"),
                (("nope", self.path("a"), "1"), 1, "nope"),
                (("ip", self.path("ipdb"), "1"), 4, "ipdb"),
                (("ip", self.path("a"), "1", "rocksdb"), 1, "rocksdb")]:
            p = self.cli("extract-features", net, weights, *args)
            self.assert_fails(p, (code,), words)
        p = self.cli("extract-features", weights, net, "ip", self.path("a"), "1")
        self.assert_fails(p, (1,), "NET comes first")
        self.assertIn("usage: netsurg extract-features", self.ok("extract-features", "--help").stdout)


if __name__ == "__main__":
    unittest.main()
