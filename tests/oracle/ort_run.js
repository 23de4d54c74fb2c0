// Runs an ONNX model once in ONNX Runtime (npm onnxruntime-node, CPU) for
// the oracle tests: node ort_run.js MODEL SPEC.json, where SPEC names each
// input's raw little-endian float32 file and shape and an output folder.
// Writes each output to OUTDIR/<k>.f32 and prints
// {"outputs": [{"name", "shape", "file"}]} on stdout.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [model, specPath] = process.argv.slice(2);
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  // No graph rewriting: the nodes as written are what is checked.
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'disabled',
    intraOpNumThreads: 1,
  });
  const feeds = {};
  for (const [name, input] of Object.entries(spec.inputs)) {
    const buf = fs.readFileSync(input.file);
    const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    feeds[name] = new ort.Tensor('float32', data, input.shape);
  }
  const out = await session.run(feeds);
  const outputs = session.outputNames.map((name, k) => {
    const y = out[name];
    const file = path.join(spec.outdir, k + '.f32');
    fs.writeFileSync(file, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
    return { name, shape: y.dims, file };
  });
  process.stdout.write(JSON.stringify({ outputs }) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.message ? e.message : e) + '\n');
  process.exit(1);
});
