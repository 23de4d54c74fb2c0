#include "kernels/winograd.h"

#include <stddef.h>
#include <string.h>

#include "kernels/parallel.h"
#include "kernels/pgemm.h"

/* A_MAX: the largest input tile side; LANES: tiles per transform step
 * (one vector); PANEL: tiles per task, the micro-kernel's width. */
enum { A_MAX = 8, LANES = 8, PANEL = NS_GEMM_NR, MR = NS_GEMM_MR };

/* Output tiles are 2 x 2 (TILE): 16 multiplies per channel pair for a
 * 3 x 3 kernel instead of 36, 36 for a 5 x 5 kernel instead of 100.
 * Larger tiles multiply less but round more: F(4x4, 3x3) erred by 6.5e-7
 * of sum |w x| against 0.9e-7 here, and was no faster on CaffeNet's
 * 13 x 13 maps (whose 4 x 4 tiles are a third padding). */
enum { TILE = 2 };

/* F(2 x 2, r x r) computes a 2 x 2 output tile from an a x a input tile
 * (a = r + 1) as Y = A^T [(G g G^T) . (B^T d B)] A.  The matrices come
 * from Toom-Cook on the points 0, 1, -1 (r = 3) or 0, 1, -1, 1/2, -2
 * (r = 5), and infinity: Winograd's correlation is the transpose of the
 * polynomial product, so A^T and G evaluate at the points (G divided by
 * the Lagrange denominators prod_{l != j} (p_j - p_l)), and B^T holds
 * the numerators prod_{l != j} (x - p_l) (all points for infinity).
 * 1/2 before 2 halved the rounding of the 6 x 6 tiles against
 * 0, 1, -1, 2, -2 (as Barabasz et al. found).  The transforms index these
 * constant tables with constant indices once unrolled, so the compiler
 * drops the zeros and the multiplications by +-1. */
static const float AT4[TILE][A_MAX] = {{1, 1, 1, 0}, {0, 1, -1, 1}};
static const float BT4[A_MAX][A_MAX] = {{-1, 0, 1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, -1, 0, 1}};
static const float G4[A_MAX][5] = {{-1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
static const float AT6[TILE][A_MAX] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 0.5f, -2, 1}};
static const float BT6[A_MAX][A_MAX] = {
    {1, -1.5f, -2, 1.5f, 1, 0},  {0, -1, 0.5f, 2.5f, 1, 0},   {0, 1, -2.5f, 0.5f, 1, 0},
    {0, -2, -1, 2, 1, 0},        {0, 0.5f, -1, -0.5f, 1, 0}, {0, 1, -1.5f, -2, 1.5f, 1}};
static const float G6[A_MAX][5] = {
    {1, 0, 0, 0, 0},
    {1.0f / 3, 1.0f / 3, 1.0f / 3, 1.0f / 3, 1.0f / 3},
    {-1.0f / 3, 1.0f / 3, -1.0f / 3, 1.0f / 3, -1.0f / 3},
    {-16.0f / 15, -8.0f / 15, -4.0f / 15, -2.0f / 15, -1.0f / 15},
    {1.0f / 15, -2.0f / 15, 4.0f / 15, -8.0f / 15, 16.0f / 15},
    {0, 0, 0, 0, 1}};

int ns_winograd_applies(const ns_conv2d_shape *s) {
  int r = (int)s->kernel_h;
  return (r == 3 || r == 5) && s->kernel_w == r && s->stride_h == 1 && s->stride_w == 1 &&
         s->dilation_h == 1 && s->dilation_w == 1 && s->pad_h == s->pad_w && s->pad_h < r &&
         s->out_h > 0 && s->out_w > 0;
}

int ns_winograd_worth(const ns_conv2d_shape *s, int64_t num, int have_u) {
  /* The products want some depth, and the channel counts must be high
   * enough for them to dominate the transforms.  Measured on CaffeNet's
   * conv3-5 with F(2x2, 3x3): with the weight transform paid per call, a
   * win from about 600 outputs; with the weights transformed beforehand
   * (have_u), already at 196 (227 x 227, batch 1). */
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  return ns_winograd_applies(s) && cg >= 16 && og >= 16 &&
         s->out_h * s->out_w * num >= (have_u ? 128 : 600);
}

/* Distance between the planes of U: 16 floats more than a multiple of
 * 16, so that the rows the micro-kernel streams from several planes do
 * not fall on the same L1 sets (plain sizes are often multiples of 4 KiB). */
static int64_t plane(int64_t v) { return (v + 15) / 16 * 16 + 16; }

static int side(const ns_conv2d_shape *s) { return TILE + (int)s->kernel_h - 1; }

/* Per thread: the packed transformed input of a task, [a * a][cg][PANEL]
 * (planes bp_plane apart, LANES spare floats after each), and the
 * products of MR output channels, [a * a][MR][PANEL + LANES]. */
enum { BUF_LD = PANEL + LANES };
static int64_t bp_plane(int64_t cg) { return cg * PANEL + LANES; }
static int64_t thread_floats(const ns_conv2d_shape *s) {
  int64_t aa = (int64_t)side(s) * side(s), cg = s->channels / s->group;
  return (aa * (bp_plane(cg) + MR * BUF_LD) + 15) / 16 * 16;
}

int64_t ns_winograd_scratch_count(const ns_conv2d_shape *s, int64_t num, int threads) {
  (void)num;
  return ns_winograd_weights_count(s) + ns_kernel_threads(threads) * thread_floats(s);
}

/* G g G^T of `lanes` (<= 8) consecutive r x r filters, one per lane:
 * written lane-wise so that the compiler vectorises it across filters. */
static void weight_lanes(int r, const float *w, int lanes, float *u, int64_t su) {
  int a = r + 1;
  const float(*g)[5] = r == 5 ? G6 : G4;
  float gg[5][5][LANES], t[A_MAX][5][LANES];
  for (int i = 0; i < r; i++)
    for (int j = 0; j < r; j++)
      for (int l = 0; l < LANES; l++) gg[i][j][l] = l < lanes ? w[l * r * r + i * r + j] : 0.0f;
  for (int i = 0; i < a; i++)
    for (int j = 0; j < r; j++)
      for (int l = 0; l < LANES; l++) {
        float sum = 0.0f;
        for (int k = 0; k < r; k++) sum += g[i][k] * gg[k][j][l];
        t[i][j][l] = sum;
      }
  for (int i = 0; i < a; i++)
    for (int j = 0; j < a; j++) {
      float o[LANES];
      for (int l = 0; l < LANES; l++) {
        float sum = 0.0f;
        for (int k = 0; k < r; k++) sum += t[i][k][l] * g[j][k];
        o[l] = sum;
      }
      for (int l = 0; l < lanes; l++) u[(i * a + j) * su + l] = o[l];
    }
}

/* U [a * a][og][cg] (planes su apart) = G g G^T for one group's filters
 * (an orphaned loop: inside the caller's parallel region). */
static void transform_weights(int r, const float *w, int64_t og, int64_t cg, float *u,
                              int64_t su) {
#pragma omp for schedule(static)
  for (int64_t o = 0; o < og; o++)
    for (int64_t c = 0; c < cg; c += LANES)
      weight_lanes(r, w + (o * cg + c) * r * r, cg - c < LANES ? (int)(cg - c) : LANES,
                   u + o * cg + c, su);
}

/* Eight floats, one per tile (GCC/Clang vector extension: one AVX
 * register, or two SSE ones in the portable build). */
typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
/* The helpers below are always inlined: no vector crosses a call. */
#pragma GCC diagnostic ignored "-Wpsabi"
#define INLINE static inline __attribute__((always_inline))

INLINE v8 load8(const float *p) {
  v8 x;
  memcpy(&x, p, sizeof x);
  return x;
}

/* sum_k c[k] x[k] over the nonzero c[k], from the first term (once
 * unrolled with constant c, no multiplications by +-1 and no 0 + x). */
#define CSUM(acc, n, c, x)                                           \
  do {                                                               \
    int any_ = 0;                                                    \
    _Pragma("GCC unroll 8") for (int k_ = 0; k_ < (n); k_++) {       \
      if ((c)[k_] == 0.0f) continue;                                 \
      v8 term_ = (c)[k_] == 1.0f ? (x)[k_] : (c)[k_] == -1.0f ? -(x)[k_] : (c)[k_] * (x)[k_]; \
      (acc) = any_ ? (acc) + term_ : term_;                          \
      any_ = 1;                                                      \
    }                                                                \
    if (!any_) (acc) = (v8){0};                                      \
  } while (0)

/* B^T d B for 8 horizontally adjacent tiles whose window starts at p
 * (rows ps apart, a + 14 columns readable), stored as 8 floats at
 * dst + (i * a + j) * dst_plane: first along the rows (e = d B), then
 * down the columns, so that few vectors are live at once. */
INLINE void input_tiles(int a, const float *p, int64_t ps, float *dst, int64_t dst_plane) {
  const float(*bt)[A_MAX] = a == 6 ? BT6 : BT4;
  v8 e[A_MAX][A_MAX];
#pragma GCC unroll 8
  for (int i = 0; i < a; i++) {
    /* Tile l's column j is column 2 l + j of the window: even and odd
     * columns of 16 consecutive floats. */
    v8 d[A_MAX];
#pragma GCC unroll 8
    for (int j = 0; j < a; j += 2) {
      v8 lo = load8(p + i * ps + j), hi = load8(p + i * ps + j + 8);
      d[j] = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
      d[j + 1] = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
    }
#pragma GCC unroll 8
    for (int j = 0; j < a; j++) CSUM(e[i][j], a, bt[j], d);
  }
#pragma GCC unroll 8
  for (int j = 0; j < a; j++) {
    v8 col[A_MAX];
#pragma GCC unroll 8
    for (int k = 0; k < a; k++) col[k] = e[k][j];
#pragma GCC unroll 8
    for (int i = 0; i < a; i++) {
      v8 o;
      CSUM(o, a, bt[i], col);
      memcpy(dst + (i * a + j) * dst_plane, &o, sizeof o);
    }
  }
}

/* A^T m A + bias (ReLU) for 8 tiles, m read as 8 floats at
 * src + (i * a + j) * src_plane; the 2 x 2 outputs of tile l at
 * out[i][2 l + j] (rows ow apart), `lanes` tiles, rows_left rows and
 * cols_left columns of them inside the output. */
INLINE void output_tiles(int a, const float *src, int64_t src_plane, float bias, int relu,
                         float *out, int64_t ow, int lanes, int64_t rows_left,
                         int64_t cols_left) {
  const float(*at)[A_MAX] = a == 6 ? AT6 : AT4;
  v8 t[TILE][A_MAX], r[TILE][TILE], zero = {0};
#pragma GCC unroll 8
  for (int j = 0; j < a; j++) { /* t = A^T m, column by column */
    v8 col[A_MAX];
#pragma GCC unroll 8
    for (int k = 0; k < a; k++) col[k] = load8(src + (k * a + j) * src_plane);
#pragma GCC unroll 2
    for (int i = 0; i < TILE; i++) CSUM(t[i][j], a, at[i], col);
  }
#pragma GCC unroll 2
  for (int i = 0; i < TILE; i++)
#pragma GCC unroll 2
    for (int j = 0; j < TILE; j++) {
      v8 sum;
      CSUM(sum, a, at[j], t[i]);
      r[i][j] = sum + bias;
      if (relu) /* negatives to 0, NaN passes (as Caffe's ReLU) */
        r[i][j] = (v8)((v8i)r[i][j] & ~(r[i][j] < zero));
    }
  for (int i = 0; i < TILE && i < rows_left; i++) {
    float *o = out + i * ow;
    if (lanes == LANES && cols_left >= 2 * LANES) { /* interleave the columns */
      v8 lo = __builtin_shufflevector(r[i][0], r[i][1], 0, 8, 1, 9, 2, 10, 3, 11);
      v8 hi = __builtin_shufflevector(r[i][0], r[i][1], 4, 12, 5, 13, 6, 14, 7, 15);
      memcpy(o, &lo, sizeof lo);
      memcpy(o + 8, &hi, sizeof hi);
    } else {
      for (int l = 0; l < lanes; l++)
        for (int j = 0; j < TILE; j++)
          if (2 * l + j < cols_left) o[2 * l + j] = r[i][j][l];
    }
  }
}

/* A task: PANEL consecutive tiles of one group (tiles numbered over the
 * items, then rows, then columns), as runs within tile rows. */
typedef struct run {
  int64_t n, ty, tx, len, pos; /* item, tile row, first tile column, tiles, place in the panel */
} run;

typedef struct task_geom {
  const ns_conv2d_shape *s;
  int64_t th, tw, tiles, cg, og;
} task_geom;

static int task_runs(const task_geom *tg, int64_t t0, int64_t t1, run *out) {
  int k = 0;
  for (int64_t t = t0; t < t1;) {
    int64_t n = t / tg->tiles, rest = t % tg->tiles, ty = rest / tg->tw, tx = rest % tg->tw;
    int64_t len = tg->tw - tx < t1 - t ? tg->tw - tx : t1 - t;
    out[k++] = (run){n, ty, tx, len, t - t0};
    t += len;
  }
  return k;
}

/* The packed transformed input of one task: bp [a * a][cg][PANEL] from
 * channels c0 .. c0 + cg.  A window that reaches past the plane (the
 * padding, or beyond the last tiles) is first copied with zeros around.
 * Each group of 8 tiles writes whole vectors: the spare lanes land on
 * places a later group or channel overwrites (or on the spare floats
 * after each plane). */
INLINE void pack_input(int a, const task_geom *tg, const run *runs, int nruns,
                       const float *x, int64_t in_item, int64_t c0, float *bp, int64_t bps) {
  const ns_conv2d_shape *s = tg->s;
  int64_t h = s->height, w = s->width, pad = s->pad_h, win = a + 14;
  float buf[A_MAX * (A_MAX + 14)];
  for (int64_t c = 0; c < tg->cg; c++)
    for (int k = 0; k < nruns; k++) {
      const run *ru = &runs[k];
      const float *pl = x + ru->n * in_item + (c0 + c) * h * w;
      int64_t y0 = 2 * ru->ty - pad;
      for (int64_t q = 0; q < ru->len; q += LANES) {
        int64_t x0 = 2 * (ru->tx + q) - pad;
        const float *p = pl + y0 * w + x0;
        int64_t ps = w;
        if (y0 < 0 || y0 + a > h || x0 < 0 || x0 + win > w) {
          int64_t lo = x0 < 0 ? -x0 : 0, hi = x0 + win > w ? w - x0 : win; /* columns inside */
          for (int i = 0; i < a; i++) {
            float *row = buf + i * win;
            int64_t yy = y0 + i;
            if (yy < 0 || yy >= h || hi <= lo) {
              memset(row, 0, (size_t)win * sizeof(float));
              continue;
            }
            memset(row, 0, (size_t)lo * sizeof(float));
            memcpy(row + lo, pl + yy * w + x0 + lo, (size_t)(hi - lo) * sizeof(float));
            memset(row + hi, 0, (size_t)(win - hi) * sizeof(float));
          }
          p = buf, ps = win;
        }
        input_tiles(a, p, ps, bp + c * PANEL + ru->pos + q, bps);
      }
    }
}

/* One task: pack its input, then for every MR output channels the a * a
 * products (the micro-kernel over all cg at once, so each sum has one
 * order whatever the threads) and their output transform. */
INLINE void run_task(int a, const task_geom *tg, int64_t t0, int64_t t1,
                     const float *u, int64_t su, const float *bias, const float *x,
                     int64_t in_item, float *y, int64_t out_item, int64_t g, int relu, float *mine,
                     ns_gemm_ukernel kern) {
  const ns_conv2d_shape *s = tg->s;
  int64_t aa = a * a, cg = tg->cg, og = tg->og, bps = bp_plane(cg), oh = s->out_h, ow = s->out_w;
  float *bp = mine, *prod = mine + aa * bps;
  run runs[PANEL];
  int nruns = task_runs(tg, t0, t1, runs);
  if (t1 - t0 < PANEL) /* lanes past the last tile: computed, not stored; zero, not stale */
    for (int64_t xi = 0; xi < aa; xi++)
      for (int64_t c = 0; c < cg; c++)
        memset(bp + xi * bps + c * PANEL + (t1 - t0), 0, (size_t)(PANEL - (t1 - t0)) * sizeof(float));
  pack_input(a, tg, runs, nruns, x, in_item, g * cg, bp, bps);
  for (int64_t o0 = 0; o0 < og; o0 += MR) {
    int rows = og - o0 < MR ? (int)(og - o0) : MR;
    for (int64_t xi = 0; xi < aa; xi++) {
      const float *ap[MR];
      for (int r = 0; r < MR; r++) ap[r] = u + xi * su + (o0 + (r < rows ? r : 0)) * cg;
      kern(cg, ap, bp + xi * bps, prod + xi * MR * BUF_LD, BUF_LD, 0, NULL, NULL, 0);
    }
    for (int r = 0; r < rows; r++) {
      int64_t o = g * og + o0 + r;
      float b = bias ? bias[o] : 0.0f;
      for (int k = 0; k < nruns; k++) {
        const run *ru = &runs[k];
        float *pl = y + ru->n * out_item + o * oh * ow;
        for (int64_t q = 0; q < ru->len; q += LANES) {
          int lanes = ru->len - q < LANES ? (int)(ru->len - q) : LANES;
          int64_t yy = 2 * ru->ty, xx = 2 * (ru->tx + q);
          output_tiles(a, prod + r * BUF_LD + ru->pos + q, MR * BUF_LD, b, relu,
                       pl + yy * ow + xx, ow, lanes, oh - yy, ow - xx);
        }
      }
    }
  }
}

/* The task loop for the tile sizes in use, with constant bounds, twice:
 * for AVX2+FMA (chosen at run time, as the GEMM kernels) and for any
 * x86-64. */
#if defined(__x86_64__) && defined(__GNUC__)
#define NS_AVX2 __attribute__((target("avx2,fma")))
#else
#define NS_AVX2
#endif

#define TASK_FUNC(SUFFIX, ATTR)                                                                 \
  ATTR static void task##SUFFIX(int a, const task_geom *tg, int64_t t0, int64_t t1,    \
                                const float *u, int64_t su, const float *bias, const float *x, \
                                int64_t in_item, float *y, int64_t out_item, int64_t g,        \
                                int relu, float *mine, ns_gemm_ukernel kern) {                 \
    if (a == 6)                                                                                 \
      run_task(6, tg, t0, t1, u, su, bias, x, in_item, y, out_item, g, relu, mine, kern);    \
    else                                                                                        \
      run_task(4, tg, t0, t1, u, su, bias, x, in_item, y, out_item, g, relu, mine, kern);    \
  }
TASK_FUNC(_c, )
TASK_FUNC(_avx2, NS_AVX2)

int64_t ns_winograd_weights_count(const ns_conv2d_shape *s) {
  int64_t aa = (int64_t)side(s) * side(s);
  int64_t cg = s->channels / s->group, og = s->num_output / s->group;
  return s->group * aa * plane(og * cg);
}

void ns_winograd_weights(const ns_conv2d_shape *s, const float *w, float *u, int threads) {
  int r = (int)s->kernel_h;
  int64_t cg = s->channels / s->group, og = s->num_output / s->group, su = plane(og * cg);
  int64_t aa = (int64_t)side(s) * side(s);
#pragma omp parallel num_threads(ns_kernel_threads(threads))
  for (int64_t g = 0; g < s->group; g++)
    transform_weights(r, w + g * og * cg * r * r, og, cg, u + g * aa * su, su);
}

void ns_winograd_conv(const ns_conv2d_shape *s, int64_t num, const float *w, const float *u_ready,
                      const float *bias, const float *x, float *y, float *scratch, int relu,
                      int threads) {
  int r = (int)s->kernel_h, a = side(s);
  int64_t aa = (int64_t)a * a;
  int64_t cg = s->channels / s->group, og = s->num_output / s->group, su = plane(og * cg);
  int64_t th = (s->out_h + TILE - 1) / TILE, tw = (s->out_w + TILE - 1) / TILE;
  task_geom tg = {s, th, tw, th * tw, cg, og};
  int64_t in_item = s->channels * s->height * s->width;
  int64_t out_item = s->num_output * s->out_h * s->out_w;
  int64_t panels = (num * tg.tiles + PANEL - 1) / PANEL, tasks = s->group * panels;
  int nt = ns_kernel_threads(threads), avx2 = ns_gemm_avx2();
  ns_gemm_ukernel kern = ns_gemm_micro_kernel();
  float *u = u_ready ? (float *)u_ready : scratch, *per = scratch + ns_winograd_weights_count(s);
#pragma omp parallel num_threads(nt)
  {
    float *mine = per + (int64_t)omp_get_thread_num() * thread_floats(s);
    if (!u_ready)
      for (int64_t g = 0; g < s->group; g++)
        transform_weights(r, w + g * og * cg * r * r, og, cg, u + g * aa * su, su);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
      int64_t g = t / panels, t0 = t % panels * PANEL;
      int64_t t1 = t0 + PANEL < num * tg.tiles ? t0 + PANEL : num * tg.tiles;
      const float *ug = u + g * aa * su;
      if (avx2)
        task_avx2(a, &tg, t0, t1, ug, su, bias, x, in_item, y, out_item, g, relu, mine, kern);
      else
        task_c(a, &tg, t0, t1, ug, su, bias, x, in_item, y, out_item, g, relu, mine, kern);
    }
  }
}
