"""A forward of one wild/ prototxt (../shared/data/prototxt/wild) by
netsurg and, where it reads the file, by OpenCV 4.6 (cv2.dnn), for
test_wild_forward.py here and tests/slow/test_wild_forward_big.py.

Weights come from `netsurg init --filler msra`, then every BatchNorm gets
random statistics and every Scale a gamma of 0.3 (`netsurg edit`), as in
test_zoo_opencv.py: init's zero variances would multiply by 1/sqrt(eps)
per layer and overflow deep nets.  Each Input top gets a uniform random
array of its declared shape; an `im_info` (Faster R-CNN) gets the image's
height and width and a scale of 0.01, so that py-faster-rcnn's min_size
filter (16 pixels times the scale) removes nothing: OpenCV's Proposal has
no such filter (see test_rcnn_opencv.py), and with it both agree.
"""
import json
import os
import re
import shutil
import tempfile
import time
from nscli import SHARED, run

try:
    import numpy as np
    import cv2
except ImportError:  # pragma: no cover
    np = cv2 = None

WILD = os.path.join(SHARED, "data", "prototxt", "wild")
RTOL = 1e-4


def info(proto):
    return json.loads(run("info", proto, "--json").stdout)


def weights(proto, net, tmp):
    w = os.path.join(tmp, "w.caffemodel")
    run("init", proto, "--filler", "msra", "--seed", "3", "--out", w)
    rng, edits = np.random.RandomState(7), []
    for layer in net["layers"]:
        name, tag = layer["name"], os.path.join(tmp, layer["name"].replace("/", "_"))
        if layer["type"] == "BatchNorm":
            c = layer["params"][0][0]
            for i, v in enumerate((rng.normal(0, 0.5, c), rng.uniform(0.5, 2, c), [1.0])):
                np.save("%s_%d.npy" % (tag, i), np.asarray(v, np.float32))
                edits += ["--load", "%s[%d]=%s_%d.npy" % (name, i, tag, i)]
        elif layer["type"] == "Scale" and layer["params"]:
            np.save(tag + "_gamma.npy", np.full(layer["params"][0], 0.3, np.float32))
            edits += ["--load", "%s[0]=%s_gamma.npy" % (name, tag)]
    if not edits:
        return w
    fixed = os.path.join(tmp, "w_bn.caffemodel")
    run("edit", proto, w, *edits, "--out", fixed)
    os.remove(w)
    return fixed


def shapes(net):
    return {b["name"]: tuple(b["shape"]) for b in net["blobs"]}


def inputs(net):
    """{name: array} for every Input top, random of its declared shape."""
    rng, dims, out = np.random.RandomState(1), shapes(net), {}
    tops = [t for l in net["layers"] if l["type"] == "Input" for t in l["tops"]]
    for top in tops:
        out[top] = rng.uniform(-1, 1, dims[top]).astype(np.float32)
    if "im_info" in out:
        image = dims[tops[0]]
        out["im_info"] = np.array([[image[2], image[3], 0.01]], np.float32)
    return out


def outputs(net):
    """The blobs no layer reads (a Silence discards: its bottoms count as
    outputs), in the order they are written."""
    read = {b for l in net["layers"] if l["type"] != "Silence" for b in l["bottoms"]
            if b not in l["tops"]}
    tops = [t for l in net["layers"] if l["type"] not in ("Silence", "Split")
            for t in l["tops"]]
    return [t for i, t in enumerate(tops) if t not in read and t not in tops[:i]]


def forward(proto, w, feeds, blobs, tmp):
    """netsurg forward: ({blob: array}, seconds of the forward command)."""
    args = ["forward", proto, w]
    for name, x in feeds.items():
        path = os.path.join(tmp, "in_%s.npy" % name)
        np.save(path, x)
        args += ["--input", "%s=%s" % (name, path)]
    for i, b in enumerate(blobs):
        args += ["--output", "%s=%s" % (b, os.path.join(tmp, "out%d.npy" % i))]
    start = time.time()
    run(*args)
    seconds = time.time() - start
    return {b: np.load(os.path.join(tmp, "out%d.npy" % i)) for i, b in enumerate(blobs)}, seconds


# py-faster-rcnn's proposal layer as OpenCV 4.6 runs it: its importer has
# no Python layer, and its Faster R-CNN sample rewrites the block so (the
# layer's anchors: ratios 0.5, 1, 2, scales 8, 16, 32; its TEST config is
# OpenCV's default)
PYTHON_PROPOSAL = re.compile(r"type:\s*'Python'(.*?)python_param\s*\{[^}]*'feat_stride':\s*(\d+)[^}]*\}",
                             re.S)
AS_OPENCV_PROPOSAL = (r"type: 'Proposal'\1proposal_param { feat_stride: \2 ratio: 0.5 ratio: 1 "
                      r"ratio: 2 scale: 8 scale: 16 scale: 32 }")


def for_opencv(proto, tmp):
    """proto, or a copy with its Python proposal layer as OpenCV's Proposal."""
    with open(proto) as f:
        text = f.read()
    if "'Python'" not in text:
        return proto
    copy = os.path.join(tmp, "opencv.prototxt")
    with open(copy, "w") as f:
        f.write(PYTHON_PROPOSAL.sub(AS_OPENCV_PROPOSAL, text))
    return copy


def opencv(proto, w, net, feeds, blobs):
    """OpenCV's values of blobs.  OpenCV names an in-place blob's value by
    the layer that wrote it last; netsurg's Splits are not OpenCV's."""
    cvnet = cv2.dnn.readNetFromCaffe(proto, w)
    cvnet.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    for name, x in feeds.items():
        cvnet.setInput(x, name)
    last, source = {}, {}
    for layer in net["layers"]:
        for top in layer["tops"]:
            if layer["type"] == "Split":
                source[top] = layer["bottoms"][0]
            elif layer["type"] != "Input":
                last[top] = layer["name"]
    names = [last[source.get(b, b)] for b in blobs]
    got = cvnet.forward(names)
    return dict(zip(blobs, got))


def max_rel_diff(ours, theirs):
    """max |ours - theirs| over the largest |theirs|; raises on a blob of
    zeros (which proves nothing) or a shape mismatch."""
    theirs = np.asarray(theirs)
    if theirs.size != ours.size:
        raise AssertionError("OpenCV's blob has %d values, ours %s" % (theirs.size, ours.shape))
    theirs = theirs.reshape(ours.shape)
    scale = np.abs(theirs).max()
    if not scale > 0 or not np.isfinite(theirs).all():
        raise AssertionError("OpenCV's blob is all zeros or not finite")
    return float(np.abs(ours - theirs).max() / scale)


# wild/ file -> (test that runs its forward, how its outputs are checked):
# "opencv" compares every output blob with OpenCV in that test; any other
# text names the test that compares it, or why nothing can.
FILES = {
    "colorization__colorization_deploy_v2.prototxt": ("fast", "opencv"),
    "densenet__DenseNet_121.prototxt": ("fast", "opencv"),
    "face__res10_300x300_ssd_deploy.prototxt":
        ("fast", "test_ssd_opencv.py: SSD blobs and detections against OpenCV"),
    "fasterrcnn__VGG16_faster_rcnn_end2end_test.prototxt": ("slow", "opencv"),
    "mobilenet__mobilenet_v1_deploy.prototxt": ("fast", "opencv"),
    "mobilenetssd__MobileNetSSD_deploy.prototxt":
        ("fast", "test_ssd_opencv.py: SSD blobs and detections against OpenCV"),
    "opencvextra__layers_prior_box.prototxt": ("fast", "opencv"),
    "pspnet__pspnet50_ADE20K_473.prototxt":
        ("slow", "OpenCV cannot read it (no bn_param, interp_param); layers by hand in test_layer_forks.c"),
    "senet__SE-ResNet-50.prototxt":
        ("fast", "test_forks_opencv.py: OpenCV with Axpy's operands swapped"),
    "shufflenet__shufflenet_v2_1x_deploy.prototxt":
        ("fast", "test_forks_opencv.py: OpenCV on a copy without shuffle_channel_param"),
    "vgg__VGG_ILSVRC_16_layers_deploy.prototxt": ("slow", "opencv"),
    "yolo__yolov3_416x416.prototxt":
        ("slow", "OpenCV cannot read it (no upsample_param); Upsample against numpy in test_forks_opencv.py"),
}


def check(test, name, tmp):
    """Forward of wild/NAME: every output of its shaped size and finite,
    and, where FILES says so, within RTOL of OpenCV's.  Returns (seconds
    of netsurg's forward, worst difference over the scale or None)."""
    proto = os.path.join(WILD, name)
    net = info(proto)
    dims = shapes(net)
    w = weights(proto, net, tmp)
    feeds, blobs = inputs(net), outputs(net)
    test.assertTrue(blobs, "%s: no output blob" % name)
    ours, seconds = forward(proto, w, feeds, blobs, tmp)
    detections = {t for l in net["layers"] if l["type"] == "DetectionOutput" for t in l["tops"]}
    for b in blobs:
        # DetectionOutput's rows are the kept boxes: a count only the
        # forward knows (the fork's Reshape in Forward_cpu); shaping gives 1
        want = dims[b][:2] + (ours[b].shape[2], 7) if b in detections else dims[b]
        test.assertEqual(ours[b].shape, want, "%s: %s" % (name, b))
        test.assertTrue(np.isfinite(ours[b]).all(), "%s: %s not finite" % (name, b))
        test.assertTrue((ours[b] != 0).any(), "%s: %s all zeros" % (name, b))
    worst = None
    if FILES[name][1] == "opencv":
        theirs = opencv(for_opencv(proto, tmp), w, net, feeds, blobs)
        diffs = [max_rel_diff(ours[b], theirs[b]) for b in blobs]
        worst = max(diffs)
        test.assertLessEqual(worst, RTOL, "%s: %s" % (name, dict(zip(blobs, diffs))))
    print("%s: forward %.1f s, %d outputs%s" % (name, seconds, len(blobs),
          "" if worst is None else ", worst diff vs OpenCV %.2g of the scale" % worst))
    return seconds, worst


def check_files(test, where):
    """check() on every file FILES runs in `where` ("fast" or "slow") and
    ../shared holds, one subtest each, in a scratch folder of its own."""
    for name in sorted(f for f, (w, _) in FILES.items() if w == where):
        if not os.path.exists(os.path.join(WILD, name)):
            continue
        with test.subTest(f=name):
            tmp = tempfile.mkdtemp(prefix="netsurg-wild-")
            try:
                check(test, name, tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
