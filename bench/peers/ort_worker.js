// ONNX Runtime (npm onnxruntime-node, CPU) as a peer engine held open by
// bench/run.py: one JSON command a line on stdin, one JSON answer a line on
// stdout (the protocol of py_worker.py). Inputs and outputs of "check" are
// raw little-endian float32 files (IN.f32 / OUT.f32), shape given by the driver.
'use strict';
const fs = require('fs');
const readline = require('readline');
const ort = require('onnxruntime-node');

let session = null;
let inputName = null;
let shape = null;
let x = null;
let model = null;

async function load(cmd) {
  model = cmd.onnx;
  shape = cmd.shape;
  // intra-op threads as asked, no inter-op parallelism, every graph optimisation.
  session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: cmd.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  inputName = session.inputNames[0];
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 12345;  // any values: timing does not depend on them
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s / 2147483648 - 1;
  }
  x = new ort.Tensor('float32', data, shape);
}

// The output named `blob` (a net with several outputs: the SSD's heads),
// else the first.
async function run(t, blob) {
  const out = await session.run({ [inputName]: t });
  return out[blob && session.outputNames.includes(blob) ? blob : session.outputNames[0]];
}

async function handle(cmd) {
  switch (cmd.cmd) {
    case 'load': {
      const t0 = process.hrtime.bigint();
      await load(cmd);
      return { ok: true, load_s: Number(process.hrtime.bigint() - t0) / 1e9 };
    }
    case 'threads':
      await load({ onnx: model, shape, threads: cmd.threads });
      return { ok: true };
    case 'check': {
      const buf = fs.readFileSync(cmd.input);
      const data = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
      const y = await run(new ort.Tensor('float32', Float32Array.from(data), cmd.shape), cmd.blob);
      fs.writeFileSync(cmd.output, Buffer.from(y.data.buffer, y.data.byteOffset,
                                               y.data.byteLength));
      return { ok: true, shape: y.dims };
    }
    case 'time': {
      for (let i = 0; i < cmd.warmup; i++) await run(x);
      const times = [];
      for (let i = 0; i < cmd.iters; i++) {
        const t0 = process.hrtime.bigint();
        await run(x);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return { ok: true, times_ms: times };
    }
    default:
      return { ok: false, error: 'unknown command ' + cmd.cmd };
  }
}

async function main() {
  const version = require('onnxruntime-node/package.json').version;
  process.stdout.write(JSON.stringify({ ok: true, version }) + '\n');
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const cmd = JSON.parse(line);
    if (cmd.cmd === 'quit') break;
    let reply;
    try {
      reply = await handle(cmd);
    } catch (e) {
      reply = { ok: false, error: String(e && e.message ? e.message : e) };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
  process.exit(0);
}

main();
