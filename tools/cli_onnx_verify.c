/* netsurg export --verify: the exported model run once in ONNX Runtime
 * (node with npm's onnxruntime-node) on a random input, against netsurg's
 * own forward on the same input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/cli.h"

/* Runs in `node -e`: argv = MODEL SPEC.json; writes OUTDIR/<k>.f32 and
 * prints one line per output: name and shape. */
static const char *ort_script =
    "const fs=require('fs'),path=require('path'),ort=require('onnxruntime-node');"
    "(async()=>{const [model,specPath]=process.argv.slice(1);"
    "const spec=JSON.parse(fs.readFileSync(specPath,'utf8'));"
    "const s=await ort.InferenceSession.create(model,{graphOptimizationLevel:'disabled'});"
    "const feeds={};for(const [n,i] of Object.entries(spec.inputs)){const b=fs.readFileSync(i.file);"
    "feeds[n]=new ort.Tensor('float32',new Float32Array(b.buffer.slice(b.byteOffset,"
    "b.byteOffset+b.length)),i.shape);}"
    "const out=await s.run(feeds);s.outputNames.forEach((n,k)=>{const y=out[n];"
    "fs.writeFileSync(path.join(spec.outdir,k+'.f32'),Buffer.from(y.data.buffer,y.data.byteOffset,"
    "y.data.byteLength));});})().catch(e=>{process.stderr.write(String(e.message||e)+'\\n');"
    "process.exit(1);});";

/* Where onnxruntime-node is: NETSURG_ORT_NODE_PATH, else the tree's
 * bench/peers/node_modules (make deps-ort); NULL: absent. */
static const char *ort_modules(void) {
  const char *env = getenv("NETSURG_ORT_NODE_PATH");
  static const char *tree = "bench/peers/node_modules";
  char probe[4096];
  const char *dir = env && *env ? env : tree;
  snprintf(probe, sizeof probe, "%s/onnxruntime-node/package.json", dir);
  return access(probe, R_OK) == 0 ? dir : NULL;
}

static int run_node(const char *modules, const char *model, const char *spec) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    setenv("NODE_PATH", modules, 1);
    execlp("node", "node", "-e", ort_script, model, spec, (char *)NULL);
    _exit(127);
  }
  int status;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int write_floats(const char *path, const float *x, int64_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(x, sizeof *x, (size_t)n, f);
  return fclose(f) == 0 && w == (size_t)n ? 0 : -1;
}

/* Random inputs in [-1, 1) into the net (unless given) and into
 * DIR/in<k>.f32, with the spec naming them. */
static int write_inputs(ns_net *net, const char *dir, FILE *spec, int given) {
  unsigned long long s = 12345;
  fprintf(spec, "{\"outdir\": ");
  cli_json_string(spec, dir);
  fprintf(spec, ", \"inputs\": {");
  for (int i = 0; i < ns_net_input_count(net); i++) {
    ns_tensor t = ns_net_blob(net, ns_net_input_blob(net, i));
    for (int64_t k = 0; k < t.count && !given; k++) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      t.data[k] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/in%d.f32", dir, i);
    if (write_floats(path, t.data, t.count)) return -1;
    fprintf(spec, "%s", i ? ", " : "");
    cli_json_string(spec, t.name);
    fprintf(spec, ": {\"file\": ");
    cli_json_string(spec, path);
    fprintf(spec, ", \"shape\": [");
    for (int a = 0; a < t.num_axes; a++) fprintf(spec, "%s%lld", a ? ", " : "", (long long)t.shape[a]);
    fprintf(spec, "]}");
  }
  fprintf(spec, "}}\n");
  return 0;
}

/* ONNX Runtime's output k (t.count floats), or NULL when missing or of
 * another size. */
static float *read_output(const char *dir, int k, ns_tensor t) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%d.f32", dir, k);
  FILE *f = fopen(path, "rb");
  float *y = malloc(sizeof *y * (size_t)(t.count + 1));
  size_t n = f && y ? fread(y, sizeof *y, (size_t)t.count + 1, f) : 0;
  if (f) fclose(f);
  if (n != (size_t)t.count) {
    free(y);
    return NULL;
  }
  return y;
}

/* Cells whose argmax over axis 1 (the classes) differ. */
static int64_t argmax_differences(ns_tensor t, const float *y) {
  int64_t outer = t.shape[0], classes = t.shape[1], inner = t.count / (outer * classes), bad = 0;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t a = 0, b = 0;
      for (int64_t c = 1; c < classes; c++) {
        const int64_t at = (o * classes + c) * inner + i;
        if (t.data[at] > t.data[(o * classes + a) * inner + i]) a = c;
        if (y[at] > y[(o * classes + b) * inner + i]) b = c;
      }
      bad += a != b;
    }
  return bad;
}

/* The argmax class of cell i of item 0 of a (1, C, H, W) map. */
static int64_t argmax_at(const float *x, int64_t classes, int64_t inner, int64_t i) {
  int64_t best = 0;
  for (int64_t c = 1; c < classes; c++)
    if (x[c * inner + i] > x[best * inner + i]) best = c;
  return best;
}

/* A small class map (one item, at most 16x16 cells) as ONNX Runtime
 * computes it, each cell marked where netsurg's argmax differs. */
static void print_map(ns_tensor t, const float *y) {
  if (t.num_axes != 4 || t.shape[0] != 1 || t.shape[2] > 16 || t.shape[3] > 16) return;
  int64_t classes = t.shape[1], inner = t.shape[2] * t.shape[3];
  printf("verify: %s: argmax map over axis 1, ONNX Runtime ('*': netsurg's differs)\n", t.name);
  for (int64_t h = 0; h < t.shape[2]; h++) {
    printf("   ");
    for (int64_t w = 0; w < t.shape[3]; w++) {
      int64_t i = h * t.shape[3] + w, theirs = argmax_at(y, classes, inner, i);
      printf(" %4lld%c", (long long)theirs, theirs == argmax_at(t.data, classes, inner, i) ? ' ' : '*');
    }
    printf("\n");
  }
}

/* One output: the largest difference over the largest magnitude, and
 * for a class map (2 axes or more) the argmax cells; 0 when equal. */
static int report_output(ns_tensor t, const float *y) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < t.count; i++) {
    diff = fmax(diff, fabs((double)y[i] - t.data[i]));
    scale = fmax(scale, fabs((double)t.data[i]));
  }
  double err = scale > 0 ? diff / scale : diff;
  int rc = err <= 1e-4 ? 0 : NS_ERR_INTERNAL;
  printf("verify: %s: ONNX Runtime vs netsurg, largest difference %.3g of the largest "
         "magnitude (%s at 1e-4)",
         t.name, err, rc ? "DIFFERENT" : "equal");
  if (t.num_axes >= 2 && t.shape[0] > 0 && t.shape[1] > 1) {
    int64_t cells = t.count / t.shape[1], bad = argmax_differences(t, y);
    printf("; argmax over axis 1: %lld of %lld cells differ", (long long)bad, (long long)cells);
  }
  printf("\n");
  print_map(t, y);
  return rc;
}

static int report(ns_net *net, const char *dir) {
  int *outs = calloc((size_t)ns_net_blob_count(net) + 1, sizeof *outs);
  if (!outs) return NS_ERR_NOMEM;
  int n = ns_net_output_blobs(net, outs), rc = 0;
  for (int k = 0; k < n; k++) {
    ns_tensor t = ns_net_blob(net, outs[k]);
    float *y = read_output(dir, k, t);
    if (!y) {
      fprintf(stderr, "netsurg export: --verify: ONNX Runtime's %s is missing or misshapen\n",
              t.name);
      rc = NS_ERR_INTERNAL;
      continue;
    }
    if (report_output(t, y)) rc = NS_ERR_INTERNAL;
    free(y);
  }
  free(outs);
  return rc;
}

static void remove_dir(const char *dir, int n_inputs, int n_outputs) {
  char path[4096];
  for (int i = 0; i < n_inputs; i++) {
    snprintf(path, sizeof path, "%s/in%d.f32", dir, i);
    remove(path);
  }
  for (int k = 0; k < n_outputs; k++) {
    snprintf(path, sizeof path, "%s/%d.f32", dir, k);
    remove(path);
  }
  snprintf(path, sizeof path, "%s/spec.json", dir);
  remove(path);
  rmdir(dir);
}

int cli_onnx_verify(ns_ctx *ctx, ns_net *net, const char *model, int inputs_given) {
  const char *modules = ort_modules();
  if (!modules) {
    fprintf(stderr, "netsurg export: --verify skipped: ONNX Runtime (npm onnxruntime-node) not "
                    "found in bench/peers/node_modules (make deps-ort) or NETSURG_ORT_NODE_PATH\n");
    return 0;
  }
  const char *tmp = getenv("TMPDIR");
  char dir[1024], spec_path[1100];
  snprintf(dir, sizeof dir, "%s/netsurg-verify-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "netsurg export: --verify: cannot make a temporary folder\n");
    return NS_ERR_IO;
  }
  snprintf(spec_path, sizeof spec_path, "%s/spec.json", dir);
  FILE *spec = fopen(spec_path, "w");
  int rc = NS_ERR_IO, ok = spec && write_inputs(net, dir, spec, inputs_given) == 0;
  if (spec && fclose(spec) != 0) ok = 0;
  if (!ok)
    fprintf(stderr, "netsurg export: --verify: cannot write the inputs in %s\n", dir);
  else {
    if (ns_net_forward(ctx, net) != NS_OK)
      rc = cli_fail(ctx, "export");
    else if (run_node(modules, model, spec_path) != 0) {
      fprintf(stderr, "netsurg export: --verify: ONNX Runtime could not run %s\n", model);
      rc = NS_ERR_INTERNAL;
    } else
      rc = report(net, dir);
  }
  remove_dir(dir, ns_net_input_count(net), ns_net_blob_count(net));
  return rc;
}
