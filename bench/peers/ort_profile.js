// ONNX Runtime's own per-node profile of a model (bench/ort_profile.py):
// node ort_profile.js MODEL.onnx N,C,H,W THREADS RUNS PREFIX; ONNX Runtime
// writes its profile JSON as PREFIX_<date>.json.
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, shapeArg, threads, runs, prefix] = process.argv.slice(2);
  const shape = shapeArg.split(',').map(Number);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    enableProfiling: true,
    profileFilePrefix: prefix,
  });
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(0.001 * i);
  const x = new ort.Tensor('float32', data, shape);
  for (let i = 0; i < Number(runs); i++) await session.run({ [session.inputNames[0]]: x });
  session.endProfiling();
}

main().catch((e) => {
  process.stderr.write(String(e) + '\n');
  process.exit(1);
});
