#include "kernels/winograd.h"

#include <stddef.h>
#include <string.h>

#include "kernels/parallel.h"
#include "kernels/pgemm.h"

/* Tiles per batch of GEMMs: bounds the scratch whatever the batch. */
enum { TILE_CAP = 1024 };
/* Tiles per transform step, and the padded input row buffer (floats, on
 * the stack: 4 rows of it, 64 KiB), which bounds the width. */
enum { LANES = 8, ROW_MAX = 4096 };

int ns_winograd_applies(const ns_conv2d_shape *s) {
  return s->kernel_h == 3 && s->kernel_w == 3 && s->stride_h == 1 && s->stride_w == 1 &&
         s->dilation_h == 1 && s->dilation_w == 1 && s->pad_h == s->pad_w && s->pad_h <= 1 &&
         s->out_h > 0 && s->out_w > 0 && s->out_w <= ROW_MAX - 4 * LANES;
}

static int64_t tiles_of(const ns_conv2d_shape *s) {
  return ((s->out_h + 1) / 2) * ((s->out_w + 1) / 2);
}

static int64_t chunk_items(const ns_conv2d_shape *s, int64_t num) {
  int64_t per = TILE_CAP / tiles_of(s);
  if (per < 1) per = 1;
  return per < num ? per : num;
}

int ns_winograd_worth(const ns_conv2d_shape *s, int64_t num, int have_u) {
  /* The GEMMs want some width, and the channel counts must be high
   * enough for them to dominate.  Measured on CaffeNet's conv3-5: with
   * the weight transform paid per call, a win from about 150 tiles; with
   * the weights transformed beforehand (have_u), already at 49 (227 x 227,
   * batch 1: conv3 3.27 vs 3.49 ms direct). */
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  return ns_winograd_applies(s) && cg >= 16 && og >= 16 &&
         tiles_of(s) * num >= (have_u ? 32 : 150);
}

/* Distance between the 16 planes of U, V and M: 16 floats more than a
 * multiple of 16, so that the 16 streams a tile writes or reads do not
 * fall on the same L1 sets (plain sizes are often multiples of 4 KiB). */
static int64_t plane(int64_t v) { return (v + 15) / 16 * 16 + 16; }

int64_t ns_winograd_scratch_count(const ns_conv2d_shape *s, int64_t num, int threads) {
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  int64_t nt = chunk_items(s, num) * tiles_of(s);
  return 16 * (plane(og * cg) + plane(cg * nt) + plane(og * nt)) + ns_gemm_scratch_floats(threads);
}

/* G g G^T of `lanes` (<= 8) consecutive filters, one per lane: written
 * lane-wise so that the compiler vectorises it across filters. */
static void weight_lanes(const float *w, int lanes, float *u, int64_t su) {
  float g[9][8], t[4][3][8];
  for (int l = 0; l < 8; l++)
    for (int k = 0; k < 9; k++) g[k][l] = l < lanes ? w[l * 9 + k] : 0.0f;
  for (int j = 0; j < 3; j++)
    for (int l = 0; l < 8; l++) {
      t[0][j][l] = g[j][l];
      t[1][j][l] = 0.5f * (g[j][l] + g[3 + j][l] + g[6 + j][l]);
      t[2][j][l] = 0.5f * (g[j][l] - g[3 + j][l] + g[6 + j][l]);
      t[3][j][l] = g[6 + j][l];
    }
  for (int i = 0; i < 4; i++) {
    float v[4][8];
    for (int l = 0; l < 8; l++) {
      v[0][l] = t[i][0][l];
      v[1][l] = 0.5f * (t[i][0][l] + t[i][1][l] + t[i][2][l]);
      v[2][l] = 0.5f * (t[i][0][l] - t[i][1][l] + t[i][2][l]);
      v[3][l] = t[i][2][l];
    }
    for (int j = 0; j < 4; j++)
      for (int l = 0; l < lanes; l++) u[(4 * i + j) * su + l] = v[j][l];
  }
}

/* U [16][og][cg] (planes su apart) = G g G^T for one group's filters
 * (inside the caller's parallel region). */
/* The transforms run inside the caller's parallel region (orphaned
 * loops), so a layer forks its threads once, not 19 times per group. */
static void transform_weights(const float *w, int64_t og, int64_t cg, float *u, int64_t su) {
#pragma omp for schedule(static)
  for (int64_t o = 0; o < og; o++)
    for (int64_t c = 0; c < cg; c += 8)
      weight_lanes(w + (o * cg + c) * 9, cg - c < 8 ? (int)(cg - c) : 8, u + o * cg + c, su);
}

/* The transforms work on 8 horizontally adjacent tiles at once, written
 * lane-wise so that the compiler vectorises them: the tiles' values are
 * contiguous in V and M.  Input rows are first copied with their zero
 * padding, so the tile loads need no bounds checks. */

/* Row yy of the plane, columns -pad .. -pad + len, zero outside. */
static void padded_row(const float *plane, int64_t h, int64_t w, int64_t yy, int64_t pad,
                       float *row, int64_t len) {
  if (yy < 0 || yy >= h) {
    memset(row, 0, (size_t)len * sizeof(float));
    return;
  }
  int64_t n = w < len - pad ? w : len - pad; /* columns 0 .. n of the plane */
  memset(row, 0, (size_t)pad * sizeof(float));
  memcpy(row + pad, plane + yy * w, (size_t)n * sizeof(float));
  memset(row + pad + n, 0, (size_t)(len - pad - n) * sizeof(float));
}

/* V [16][cg][nt] (planes sv apart) = B^T d B for every 4x4 input tile of
 * `items` items. */
static void transform_input(const ns_conv2d_shape *s, const float *x, int64_t items,
                            int64_t in_item, int64_t c0, int64_t cg, float *v, int64_t sv,
                            int64_t ntiles) {
  int64_t th = (s->out_h + 1) / 2, tw = (s->out_w + 1) / 2, tiles = th * tw;
  int64_t h = s->height, wd = s->width, pad = s->pad_h;
  /* Columns a group of 8 tiles may read, rounded up to whole groups. */
  int64_t len = 2 * ((tw + LANES - 1) / LANES * LANES) + 2;
#pragma omp for schedule(static)
  for (int64_t c = 0; c < cg; c++) {
    float rows[4][ROW_MAX], *rp[4];
    for (int64_t n = 0; n < items; n++) {
      const float *plane = x + n * in_item + (c0 + c) * h * wd;
      for (int64_t ty = 0; ty < th; ty++) {
        if (ty == 0) {
          for (int i = 0; i < 4; i++) {
            rp[i] = rows[i];
            padded_row(plane, h, wd, i - pad, pad, rp[i], len);
          }
        } else { /* tile rows overlap by 2 input rows: keep them */
          float *r0 = rp[0], *r1 = rp[1];
          rp[0] = rp[2], rp[1] = rp[3], rp[2] = r0, rp[3] = r1;
          padded_row(plane, h, wd, 2 * ty - pad + 2, pad, rp[2], len);
          padded_row(plane, h, wd, 2 * ty - pad + 3, pad, rp[3], len);
        }
        for (int64_t tx0 = 0; tx0 < tw; tx0 += LANES) {
          int lanes = tw - tx0 < LANES ? (int)(tw - tx0) : LANES;
          float d[4][4][LANES], t[4][4][LANES], o[16][LANES];
          for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
              for (int l = 0; l < LANES; l++) d[i][j][l] = rp[i][2 * (tx0 + l) + j];
          for (int j = 0; j < 4; j++)
            for (int l = 0; l < LANES; l++) {
              t[0][j][l] = d[0][j][l] - d[2][j][l];
              t[1][j][l] = d[1][j][l] + d[2][j][l];
              t[2][j][l] = d[2][j][l] - d[1][j][l];
              t[3][j][l] = d[1][j][l] - d[3][j][l];
            }
          for (int i = 0; i < 4; i++)
            for (int l = 0; l < LANES; l++) {
              o[4 * i + 0][l] = t[i][0][l] - t[i][2][l];
              o[4 * i + 1][l] = t[i][1][l] + t[i][2][l];
              o[4 * i + 2][l] = t[i][2][l] - t[i][1][l];
              o[4 * i + 3][l] = t[i][1][l] - t[i][3][l];
            }
          float *dst = v + c * ntiles + n * tiles + ty * tw + tx0;
          /* All 8 lanes where the spare ones land on tiles of this item
           * and channel that come later (so this thread rewrites them):
           * whole vectors; otherwise only the tiles of the group. */
          if (ty * tw + tx0 + LANES <= tiles) {
            for (int xi = 0; xi < 16; xi++)
              for (int l = 0; l < LANES; l++) dst[xi * sv + l] = o[xi][l];
          } else {
            for (int xi = 0; xi < 16; xi++)
              for (int l = 0; l < lanes; l++) dst[xi * sv + l] = o[xi][l];
          }
        }
      }
    }
  }
}

/* y = A^T m A + bias (ReLU) for every tile, from M [16][og][nt] (planes
 * sm apart, each with 16 floats to spare past its end, so a group of 8
 * tiles may read past the last tile). */
static void transform_output(const ns_conv2d_shape *s, const float *m, int64_t items,
                             int64_t out_item, int64_t o0, int64_t og, const float *bias,
                             int relu, float *y, int64_t sm, int64_t ntiles) {
  int64_t th = (s->out_h + 1) / 2, tw = (s->out_w + 1) / 2, tiles = th * tw;
  int64_t oh = s->out_h, ow = s->out_w;
#pragma omp for schedule(static)
  for (int64_t o = 0; o < og; o++) {
    float b = bias ? bias[o0 + o] : 0.0f;
    for (int64_t n = 0; n < items; n++) {
      float *plane = y + n * out_item + (o0 + o) * oh * ow;
      for (int64_t ty = 0; ty < th; ty++)
        for (int64_t tx0 = 0; tx0 < tw; tx0 += LANES) {
          int lanes = tw - tx0 < LANES ? (int)(tw - tx0) : LANES;
          const float *src = m + o * ntiles + n * tiles + ty * tw + tx0;
          float mm[16][LANES], t[2][4][LANES], r[2][2][LANES];
          for (int xi = 0; xi < 16; xi++)
            for (int l = 0; l < LANES; l++) mm[xi][l] = src[xi * sm + l];
          for (int j = 0; j < 4; j++)
            for (int l = 0; l < LANES; l++) {
              t[0][j][l] = mm[j][l] + mm[4 + j][l] + mm[8 + j][l];
              t[1][j][l] = mm[4 + j][l] - mm[8 + j][l] - mm[12 + j][l];
            }
          for (int i = 0; i < 2; i++)
            for (int l = 0; l < LANES; l++) {
              float v0 = t[i][0][l] + t[i][1][l] + t[i][2][l] + b;
              float v1 = t[i][1][l] - t[i][2][l] - t[i][3][l] + b;
              r[i][0][l] = relu && v0 < 0.0f ? 0.0f : v0;
              r[i][1][l] = relu && v1 < 0.0f ? 0.0f : v1;
            }
          for (int i = 0; i < 2; i++) {
            int64_t yy = 2 * ty + i;
            if (yy >= oh) continue;
            float *out = plane + yy * ow + 2 * tx0;
            if (2 * (tx0 + lanes) <= ow) {
              for (int l = 0; l < lanes; l++) out[2 * l] = r[i][0][l], out[2 * l + 1] = r[i][1][l];
            } else {
              for (int l = 0; l < lanes; l++) {
                out[2 * l] = r[i][0][l];
                if (2 * (tx0 + l) + 1 < ow) out[2 * l + 1] = r[i][1][l];
              }
            }
          }
        }
    }
  }
}

int64_t ns_winograd_weights_count(const ns_conv2d_shape *s) {
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  return s->group * 16 * plane(og * cg);
}

void ns_winograd_weights(const ns_conv2d_shape *s, const float *w, float *u, int threads) {
  int64_t cg = s->channels / s->group, og = s->num_output / s->group, su = plane(og * cg);
#pragma omp parallel num_threads(ns_kernel_threads(threads))
  for (int64_t g = 0; g < s->group; g++)
    transform_weights(w + g * og * cg * 9, og, cg, u + g * 16 * su, su);
}

void ns_winograd_conv(const ns_conv2d_shape *s, int64_t num, const float *w, const float *u_ready,
                      const float *bias, const float *x, float *y, float *scratch, int relu,
                      int threads) {
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  int64_t in_item = s->channels * s->height * s->width;
  int64_t out_item = s->num_output * s->out_h * s->out_w;
  int64_t chunk = chunk_items(s, num), cap = chunk * tiles_of(s);
  int64_t su = plane(og * cg), sv = plane(cg * cap), sm = plane(og * cap);
  float *u = scratch, *v = u + 16 * su, *m = v + 16 * sv, *pack = m + 16 * sm;
  int nt = ns_kernel_threads(threads);
#pragma omp parallel num_threads(nt)
  {
    float *my_pack = pack + (int64_t)omp_get_thread_num() * NS_GEMM_KC * NS_GEMM_NC;
    for (int64_t g = 0; g < s->group; g++) {
      const float *ug = u;
      if (u_ready)
        ug = u_ready + g * 16 * su;
      else
        transform_weights(w + g * og * cg * 9, og, cg, u, su);
      for (int64_t n0 = 0; n0 < num; n0 += chunk) {
        int64_t items = num - n0 < chunk ? num - n0 : chunk, ntiles = items * tiles_of(s);
        transform_input(s, x + n0 * in_item, items, in_item, g * cg, cg, v, sv, ntiles);
        ns_gemm_plan plan[16]; /* each thread its own copy: no sharing needed */
        for (int xi = 0; xi < 16; xi++)
          ns_gemm_plan_init(&plan[xi], og, ntiles, cg, ug + xi * su, cg, v + xi * sv, ntiles, 0,
                            m + xi * sm, ntiles, NULL, threads);
        int64_t per = plan[0].tasks;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < 16 * per; t++) ns_gemm_plan_run(&plan[t / per], t % per, my_pack);
        transform_output(s, m, items, out_item, g * og, og, bias, relu, y + n0 * out_item, sm,
                         ntiles);
      }
    }
  }
}
