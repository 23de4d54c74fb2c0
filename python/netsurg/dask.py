"""Classify many image files on a dask.distributed cluster.

Tasks are batches of paths.  Each worker process loads a model once and
keeps it in _MODELS, keyed by the model's files and options, so the 1,000th
batch on a worker costs a forward pass, not a model load.  Results are the
records `netsurg classify --list` writes as JSON lines (ImageClassifier), in
input order; a file that cannot be read is a record with "error", not a
failed task.

A worker that dies takes its running batches with it; the scheduler runs
them again elsewhere (Dask's retries), and each batch's result is gathered
once, so every path comes back exactly once.  With out_dir, each batch
also writes out_dir/part-NNNNNNNN.jsonl atomically (a temporary file renamed
over the target): a batch run twice writes the same file twice, never two
copies of its lines, and merge_parts() concatenates the parts in order (a
worker killed while writing leaves a hidden .part-* temporary, which
merge_parts ignores).

    from dask.distributed import Client
    from netsurg.dask import Model, classify_paths
    client = Client("scheduler:8786")
    model = Model("fcn.prototxt", "fcn.caffemodel", mean=(104, 117, 123))
    records = classify_paths(client, model, paths, batch=32)
"""
import collections
import glob
import json
import os
import tempfile

from ._batch import ImageClassifier
from ._core import set_num_threads

_MODELS = {}  # per worker process: Model -> ImageClassifier
_LOADS = [0]  # models this process has loaded (a check on the cache)

Model = collections.namedtuple(
    "Model", "prototxt weights raw_scale mean channel_swap input_scale antialias blob top threads "
    "forward_batch")
Model.__new__.__defaults__ = (255.0, None, None, 1.0, True, None, 5, 0, 16)
Model.__doc__ = ("What a worker loads: ImageClassifier's arguments (mean and channel_swap as "
                 "tuples; forward_batch is its batch), and threads, the net's compute threads "
                 "in each worker (0: all cores).  A task's batch of paths may be larger than "
                 "forward_batch: it runs as several forward passes.")


def _classifier(model):
    """The worker's copy of the model, loaded on its first batch."""
    c = _MODELS.get(model)
    if c is None:
        set_num_threads(model.threads)
        c = ImageClassifier(model.prototxt, model.weights, model.raw_scale, model.mean,
                            model.channel_swap, model.input_scale, model.antialias, model.blob,
                            model.top, model.forward_batch)
        _MODELS[model] = c
        _LOADS[0] += 1
    return c


def _write_atomically(path, records):
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def classify_batch(model, paths, part=None, out_dir=None):
    """One task: the records for paths; with out_dir also written to
    out_dir/part-<part>.jsonl."""
    records = _classifier(model).classify_files(list(paths))
    if out_dir is not None:
        _write_atomically(os.path.join(out_dir, "part-%08d.jsonl" % part), records)
    return records


def model_loads():
    """How many times this process has loaded a model (client.run(model_loads)
    shows the cache at work: one per worker and model)."""
    return _LOADS[0]


def classify_paths(client, model, paths, batch=16, out_dir=None):
    """Every path's record, in order, classified on the client's cluster in
    batches of `batch` paths."""
    paths = list(paths)
    batches = [paths[i:i + batch] for i in range(0, len(paths), batch)]
    futures = client.map(classify_batch, [model] * len(batches), batches,
                         range(len(batches)), [out_dir] * len(batches), pure=False)
    return [r for records in client.gather(futures) for r in records]


def classify_bag(bag, model):
    """A dask.bag of paths -> a bag of records, one batch per partition."""
    return bag.map_partitions(lambda paths: classify_batch(model, paths))


def merge_parts(out_dir):
    """The records written under out_dir, in input order."""
    records = []
    for path in sorted(glob.glob(os.path.join(out_dir, "part-*.jsonl"))):
        with open(path) as f:
            records.extend(json.loads(line) for line in f)
    return records
