#include "kernels/winograd.h"

#include <stddef.h>
#include <string.h>

#include "kernels/parallel.h"
#include "kernels/pgemm.h"

/* A_MAX: the input tile side; LANES: tiles per transform step
 * (one vector); PANEL: tiles per task, the micro-kernel's width. */
enum { A_MAX = 6, LANES = 8, PANEL = NS_GEMM_NR, MR = NS_GEMM_MR };

/* Winograd F(m x m, r x r) computes an m x m output tile from an a x a
 * input tile (a = m + r - 1) as Y = A^T [(G g G^T) . (B^T d B)] A, with
 * a^2 multiplies per channel pair instead of m^2 r^2.  Here: F(4x4, 3x3)
 * (36 instead of 144) and F(2x2, 5x5) (36 instead of 100), both on 6 x 6
 * input tiles.  The matrices come from Toom-Cook on the points 0, 1, -1,
 * 1/2, -2 and infinity: Winograd's correlation is the transpose of the
 * polynomial product, so A^T and G evaluate at the points (G divided by
 * the Lagrange denominators prod_{l != j} (p_j - p_l)), and B^T holds the
 * numerators prod_{l != j} (x - p_l) (all points for infinity).  1/2
 * before 2 halved the rounding against 0, 1, -1, 2, -2 (as Barabasz et al.
 * found): F(4x4, 3x3) errs by at most 6.5e-7-1e-6 of sum |w x| against a
 * double-precision reference, F(2x2, 5x5) by 3e-7 (64-channel layers;
 * F(2x2, 3x3), used before, 0.9e-7).  The transforms index these constant
 * tables with constant indices once unrolled, so the compiler drops the
 * zeros and the multiplications by +-1. */
static const float BT6[A_MAX][A_MAX] = {
    {1, -1.5f, -2, 1.5f, 1, 0},  {0, -1, 0.5f, 2.5f, 1, 0},   {0, 1, -2.5f, 0.5f, 1, 0},
    {0, -2, -1, 2, 1, 0},        {0, 0.5f, -1, -0.5f, 1, 0}, {0, 1, -1.5f, -2, 1.5f, 1}};
static const float AT26[A_MAX][A_MAX] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 0.5f, -2, 1}};
static const float AT46[A_MAX][A_MAX] = {{1, 1, 1, 1, 1, 0},
                                         {0, 1, -1, 0.5f, -2, 0},
                                         {0, 1, 1, 0.25f, 4, 0},
                                         {0, 1, -1, 0.125f, -8, 1}};
static const float G36[A_MAX][5] = {{1, 0, 0},
                                    {1.0f / 3, 1.0f / 3, 1.0f / 3},
                                    {-1.0f / 3, 1.0f / 3, -1.0f / 3},
                                    {-16.0f / 15, -8.0f / 15, -4.0f / 15},
                                    {1.0f / 15, -2.0f / 15, 4.0f / 15},
                                    {0, 0, 1}};
static const float G56[A_MAX][5] = {
    {1, 0, 0, 0, 0},
    {1.0f / 3, 1.0f / 3, 1.0f / 3, 1.0f / 3, 1.0f / 3},
    {-1.0f / 3, 1.0f / 3, -1.0f / 3, 1.0f / 3, -1.0f / 3},
    {-16.0f / 15, -8.0f / 15, -4.0f / 15, -2.0f / 15, -1.0f / 15},
    {1.0f / 15, -2.0f / 15, 4.0f / 15, -8.0f / 15, 16.0f / 15},
    {0, 0, 0, 0, 1}};

/* A strided convolution (stride st, kernel k) is a stride-1 one with
 * kernel ceil(k / st) on its input rearranged space-to-depth: channel
 * (c, i, j) of the new input holds x[c][st y + i - pad][st x + j - pad]
 * (zero outside), the new kernel tap (c, i, j)[ky][kx] is the old
 * [c][st ky + i][st kx + j] (zero past k).  CaffeNet's conv1 (11 x 11,
 * stride 4, 3 channels) becomes a 3 x 3 convolution of 48 channels,
 * which F(4x4, 3x3) then does with 36 multiplies per 16 outputs and
 * channel pair: 105 M multiply-adds per image become 33 M (12 x 12 taps
 * for 11 x 11, 56 x 56 outputs for 55 x 55 counted). */
static int strided(const ns_conv2d_shape *s) { return s->stride_h > 1 || s->stride_w > 1; }

/* The stride-1 convolution this path computes for s (s itself when its
 * stride is 1). */
static ns_conv2d_shape effective(const ns_conv2d_shape *s) {
  if (!strided(s)) return *s;
  int st = s->stride_h, r = (s->kernel_h + st - 1) / st;
  return (ns_conv2d_shape){s->channels * st * st, s->out_h + r - 1, s->out_w + r - 1,
                           s->num_output, s->group, r, r, 0, 0, 1, 1, 1, 1, s->out_h, s->out_w};
}

static int applies_stride1(const ns_conv2d_shape *s) {
  int r = (int)s->kernel_h;
  return (r == 3 || r == 5) && s->kernel_w == r && s->stride_h == 1 && s->stride_w == 1 &&
         s->dilation_h == 1 && s->dilation_w == 1 && s->pad_h == s->pad_w && s->pad_h < r &&
         s->out_h > 0 && s->out_w > 0;
}

int ns_winograd_applies(const ns_conv2d_shape *s) {
  if (!strided(s)) return applies_stride1(s);
  ns_conv2d_shape e = effective(s);
  return s->stride_w == s->stride_h && s->kernel_w == s->kernel_h && s->pad_w == s->pad_h &&
         s->dilation_h == 1 && s->dilation_w == 1 && s->pad_h < s->kernel_h &&
         applies_stride1(&e);
}

int ns_winograd_worth(const ns_conv2d_shape *s, int64_t num, int have_u) {
  /* The products want some depth, and the channel counts must be high
   * enough for them to dominate the transforms.  Measured on CaffeNet's
   * conv3-5 when they ran F(2x2, 3x3): with the weight transform paid per
   * call, a win from about 600 outputs; with the weights transformed
   * beforehand (have_u), already at 196 (227 x 227, batch 1). */
  ns_conv2d_shape e = effective(s);
  int64_t cg = e.channels / e.group, og = e.num_output / e.group;
  return ns_winograd_applies(s) && cg >= 16 && og >= 16 &&
         e.out_h * e.out_w * num >= (have_u ? 128 : 600);
}

/* Distance between the planes of U: 16 floats more than a multiple of
 * 16, so that the rows the micro-kernel streams from several planes do
 * not fall on the same L1 sets (plain sizes are often multiples of 4 KiB). */
static int64_t plane(int64_t v) { return (v + 15) / 16 * 16 + 16; }

/* The output tile side m for the stride-1 convolution e: 4 x 4 for a
 * 3 x 3 kernel, 2 x 2 for 5 x 5.  Measured (same run, 2 threads, three
 * rounds) against the earlier rule, which kept 2 x 2 tiles for maps under
 * 48 of them (227's 13 x 13) and for over 227 channels: 227 batch 1
 * 14.0-14.3 ms against 14.2-15.1 (conv3 1.6-1.7 against 2.0), batch 10
 * 53.9-55.2 against 57.0-57.4, 451 full-conv 54.9-60.9 against 56.2-61.0
 * (conv3 3.4-3.7 against 4.4-4.5).  (Before the threads shared the
 * packing of few-panel layers, 4 x 4 had been slower there.)  The choice
 * depends on the kernel alone, never on the batch or the threads, so an
 * image gives the same bits whatever batch it is in. */
static int tile_of(const ns_conv2d_shape *e) { return e->kernel_h == 3 ? 4 : 2; }

int ns_winograd_tile(const ns_conv2d_shape *s) {
  ns_conv2d_shape e = effective(s);
  return tile_of(&e);
}

/* The input tile side a = m + r - 1. */
static int side(const ns_conv2d_shape *e) { return tile_of(e) + (int)e->kernel_h - 1; }

/* A task takes as many panels as keep its packed input within
 * SPAN_FLOATS (a quarter of this Zen 4's 1 MiB L2), at most PANELS_MAX: the
 * weight rows then serve several panels from L1.  CaffeNet's conv2
 * (48 channels, 6 x 6) takes 2, 2 threads: 227 batch 10 14.7 -> 13.6 ms,
 * 451 full-conv 6.3 -> 5.5 ms; conv3-5 (192-256 channels) take 1: with 2
 * or 4, batch 1 was slower (conv3 2.1 -> 2.3-2.5 ms).
 *
 * Per thread: the packed transformed input of a task,
 * [a * a][panel][cg][PANEL] (panels pstride apart and planes bp_plane
 * apart), and the products of MR
 * output channels, [a * a][MR][prod_ld]. */
enum { SPAN_FLOATS = 64 << 10, PANELS_MAX = 4 };
static int64_t task_span(const ns_conv2d_shape *e) {
  int64_t span = SPAN_FLOATS / ((int64_t)side(e) * side(e) * (e->channels / e->group) * PANEL);
  return span < 1 ? 1 : span > PANELS_MAX ? PANELS_MAX : span;
}
static int64_t pstride(int64_t cg) { return cg * PANEL; }
static int64_t bp_plane(int64_t cg, int panels) { return panels * pstride(cg); }
static int64_t prod_ld(int panels) { return panels * PANEL + LANES; }
static int64_t thread_floats(const ns_conv2d_shape *e) {
  int64_t aa = (int64_t)side(e) * side(e), cg = e->channels / e->group, span = task_span(e);
  return (aa * (bp_plane(cg, (int)span) + MR * prod_ld(PANELS_MAX)) + 15) / 16 * 16;
}
/* The packed input the threads share when a layer has few panels. */
static int64_t shared_floats(const ns_conv2d_shape *e) {
  int64_t aa = (int64_t)side(e) * side(e), cg = e->channels / e->group;
  return (aa * bp_plane(cg, PANELS_MAX) + 15) / 16 * 16;
}

/* Items whose space-to-depth input is made at a time (at least 1):
 * about 16 MiB of it. */
enum { S2D_FLOATS = 4 << 20 };
static int64_t s2d_items(const ns_conv2d_shape *s, const ns_conv2d_shape *e, int64_t num) {
  if (!strided(s)) return num;
  int64_t per = S2D_FLOATS / (e->channels * e->height * e->width);
  per = per < 1 ? 1 : per;
  return per < num ? per : num;
}

int64_t ns_winograd_scratch_count(const ns_conv2d_shape *s, int64_t num, int threads) {
  ns_conv2d_shape e = effective(s);
  int64_t xs = strided(s) ? s2d_items(s, &e, num) * e.channels * e.height * e.width : 0;
  return ns_winograd_weights_count(s) + (xs + 15) / 16 * 16 + shared_floats(&e) +
         ns_kernel_threads(threads) * thread_floats(&e);
}

/* The space-to-depth input of `items` items (see effective), inside the
 * caller's parallel region. */
static void space_to_depth(const ns_conv2d_shape *s, const ns_conv2d_shape *e, const float *x,
                           int64_t items, float *xs) {
  int64_t st = s->stride_h, pad = s->pad_h, h = s->height, w = s->width;
  int64_t eh = e->height, ew = e->width;
#pragma omp for schedule(static)
  for (int64_t nc = 0; nc < items * s->channels; nc++) {
    const float *pl = x + nc * h * w;
    for (int64_t i = 0; i < st; i++)
      for (int64_t j = 0; j < st; j++) {
        float *dst = xs + ((nc * st + i) * st + j) * eh * ew;
        for (int64_t yy = 0; yy < eh; yy++) {
          int64_t sy = st * yy + i - pad;
          float *row = dst + yy * ew;
          if (sy < 0 || sy >= h) {
            memset(row, 0, (size_t)ew * sizeof(float));
            continue;
          }
          for (int64_t xx = 0; xx < ew; xx++) {
            int64_t sx = st * xx + j - pad;
            row[xx] = sx >= 0 && sx < w ? pl[sy * w + sx] : 0.0f;
          }
        }
      }
  }
}

/* G g G^T of `lanes` (<= 8) consecutive r x r filters, one per lane:
 * written lane-wise so that the compiler vectorises it across filters. */
static void weight_lanes(int r, int a, const float *w, int lanes, float *u, int64_t su,
                         int64_t lane_step) {
  const float(*g)[5] = r == 5 ? G56 : G36;
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
      for (int l = 0; l < lanes; l++) u[(i * a + j) * su + l * lane_step] = o[l];
    }
}

/* U [a * a][og / MR][cg'][MR] (planes su apart; the micro-kernel's packed
 * A, og rounded up with zero filters) = G g G^T for one group's filters
 * w [og][cg][k][k] of s, as the taps of the stride-1 convolution e
 * (cg' = cg st^2 channels of r x r taps; see effective).  An orphaned
 * loop: inside the caller's parallel region. */
static int64_t u_plane(const ns_conv2d_shape *e) {
  int64_t og = e->num_output / e->group, cg = e->channels / e->group;
  return plane((og + MR - 1) / MR * MR * cg);
}

static void transform_weights(const ns_conv2d_shape *s, const ns_conv2d_shape *e, const float *w,
                              float *u) {
  int r = e->kernel_h, k = s->kernel_h, st = s->stride_h;
  int64_t og = e->num_output / e->group, ecg = e->channels / e->group, cg = s->channels / s->group;
  int64_t su = u_plane(e);
#pragma omp for schedule(static)
  for (int64_t o = 0; o < (og + MR - 1) / MR * MR; o++)
    for (int64_t c0 = 0; c0 < ecg; c0 += LANES) {
      int lanes = ecg - c0 < LANES ? (int)(ecg - c0) : LANES;
      float taps[LANES * 25];
      for (int l = 0; l < lanes; l++) {
        int64_t ce = c0 + l, c = ce / (st * st), i = ce % (st * st) / st, j = ce % st;
        for (int ky = 0; ky < r; ky++)
          for (int kx = 0; kx < r; kx++) {
            int64_t ki = st * ky + i, kj = st * kx + j;
            taps[(l * r + ky) * r + kx] =
                o < og && ki < k && kj < k ? w[((o * cg + c) * k + ki) * k + kj] : 0.0f;
          }
      }
      weight_lanes(r, side(e), taps, lanes, u + (o / MR * ecg + c0) * MR + o % MR, su, MR);
    }
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

/* Lanes l of out[j] = element m l + j of the 8 m floats at p, j < m. */
INLINE void deinterleave(int m, const float *p, v8 *out) {
  if (m == 2) {
    v8 lo = load8(p), hi = load8(p + 8);
    out[0] = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
    out[1] = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
    return;
  }
  v8 q0 = load8(p), q1 = load8(p + 8), q2 = load8(p + 16), q3 = load8(p + 24);
  v8 a0 = __builtin_shufflevector(q0, q1, 0, 4, 8, 12, 1, 5, 9, 13);
  v8 a1 = __builtin_shufflevector(q0, q1, 2, 6, 10, 14, 3, 7, 11, 15);
  v8 b0 = __builtin_shufflevector(q2, q3, 0, 4, 8, 12, 1, 5, 9, 13);
  v8 b1 = __builtin_shufflevector(q2, q3, 2, 6, 10, 14, 3, 7, 11, 15);
  out[0] = __builtin_shufflevector(a0, b0, 0, 1, 2, 3, 8, 9, 10, 11);
  out[1] = __builtin_shufflevector(a0, b0, 4, 5, 6, 7, 12, 13, 14, 15);
  out[2] = __builtin_shufflevector(a1, b1, 0, 1, 2, 3, 8, 9, 10, 11);
  out[3] = __builtin_shufflevector(a1, b1, 4, 5, 6, 7, 12, 13, 14, 15);
}

/* B^T d B for 8 horizontally adjacent tiles (m columns apart) whose
 * window starts at p (rows ps apart, win(a, m) columns readable), stored
 * as 8 floats (at most `room`) at dst + (i * a + j) * dst_plane: first
 * along the rows (e = d B), then down the columns, so that few vectors are
 * live at once. */
INLINE void input_tiles(int a, int m, const float *p, int64_t ps, float *dst,
                        int64_t dst_plane, int room) {
  const float(*bt)[A_MAX] = BT6;
  v8 e[A_MAX][A_MAX];
#pragma GCC unroll 8
  for (int i = 0; i < a; i++) {
    /* Tile l's column j is column m l + j of the window. */
    v8 d[A_MAX + 4];
#pragma GCC unroll 8
    for (int j = 0; j < a; j += m) deinterleave(m, p + i * ps + j, d + j);
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
      if (room >= LANES)
        memcpy(dst + (i * a + j) * dst_plane, &o, sizeof o);
      else /* the end of the channel's row: the next row may be another thread's */
        memcpy(dst + (i * a + j) * dst_plane, &o, (size_t)room * sizeof(float));
    }
  }
}

/* A^T m A times scale + bias (ReLU) for 8 tiles, m read as 8 floats at
 * src + (i * a + j) * src_plane; the mt x mt outputs of tile l at
 * out[i][mt l + j] (rows ow apart), `lanes` tiles, rows_left rows and
 * cols_left columns of them inside the output. */
INLINE void output_tiles(int a, int mt, const float *src, int64_t src_plane, float scale,
                         float bias, int relu, float *out, int64_t ow, int lanes, int64_t rows_left,
                         int64_t cols_left) {
  const float(*at)[A_MAX] = mt == 2 ? AT26 : AT46;
  v8 t[4][A_MAX], r[4][4], zero = {0};
#pragma GCC unroll 8
  for (int j = 0; j < a; j++) { /* t = A^T m, column by column */
    v8 col[A_MAX];
#pragma GCC unroll 8
    for (int k = 0; k < a; k++) col[k] = load8(src + (k * a + j) * src_plane);
#pragma GCC unroll 4
    for (int i = 0; i < mt; i++) CSUM(t[i][j], a, at[i], col);
  }
#pragma GCC unroll 4
  for (int i = 0; i < mt; i++)
#pragma GCC unroll 4
    for (int j = 0; j < mt; j++) {
      v8 sum;
      CSUM(sum, a, at[j], t[i]);
      r[i][j] = sum * scale + bias; /* times 1 is exact: unscaled sums keep their bits */
      if (relu) /* negatives to 0, NaN passes (as Caffe's ReLU) */
        r[i][j] = (v8)((v8i)r[i][j] & ~(r[i][j] < zero));
    }
  for (int i = 0; i < mt && i < rows_left; i++) {
    float *o = out + i * ow;
    if (lanes == LANES && cols_left >= mt * LANES) { /* interleave the columns */
      v8 v[4];
      if (mt == 2) {
        v[0] = __builtin_shufflevector(r[i][0], r[i][1], 0, 8, 1, 9, 2, 10, 3, 11);
        v[1] = __builtin_shufflevector(r[i][0], r[i][1], 4, 12, 5, 13, 6, 14, 7, 15);
      } else {
        v8 p0 = __builtin_shufflevector(r[i][0], r[i][1], 0, 8, 1, 9, 2, 10, 3, 11);
        v8 p1 = __builtin_shufflevector(r[i][0], r[i][1], 4, 12, 5, 13, 6, 14, 7, 15);
        v8 q0 = __builtin_shufflevector(r[i][2], r[i][3], 0, 8, 1, 9, 2, 10, 3, 11);
        v8 q1 = __builtin_shufflevector(r[i][2], r[i][3], 4, 12, 5, 13, 6, 14, 7, 15);
        v[0] = __builtin_shufflevector(p0, q0, 0, 1, 8, 9, 2, 3, 10, 11);
        v[1] = __builtin_shufflevector(p0, q0, 4, 5, 12, 13, 6, 7, 14, 15);
        v[2] = __builtin_shufflevector(p1, q1, 0, 1, 8, 9, 2, 3, 10, 11);
        v[3] = __builtin_shufflevector(p1, q1, 4, 5, 12, 13, 6, 7, 14, 15);
      }
      for (int q = 0; q < mt; q++) memcpy(o + 8 * q, &v[q], sizeof v[q]);
    } else {
      for (int l = 0; l < lanes; l++)
        for (int j = 0; j < mt; j++)
          if (mt * l + j < cols_left) o[mt * l + j] = r[i][j][l];
    }
  }
}

/* A task: PANEL consecutive tiles of one group (tiles numbered over the
 * items, then rows, then columns), as runs within tile rows. */
typedef struct run {
  int64_t n, ty, tx, len, pos; /* item, tile row, first tile column, tiles, place in the panel */
} run;

/* What every task of a layer shares. */
typedef struct job {
  const ns_conv2d_shape *s;
  int m;                                              /* output tile side */
  int64_t tw, tiles, cg, og, in_item, out_item, su; /* tiles per row and per item */
  const float *u, *scale, *bias, *x;                  /* u: all groups, planes su apart */
  float *y;
  int relu;
  ns_gemm_packed_kernel kern;
} job;

static int task_runs(const job *jb, int64_t t0, int64_t t1, run *out) {
  int k = 0;
  for (int64_t t = t0; t < t1;) {
    int64_t n = t / jb->tiles, rest = t % jb->tiles, ty = rest / jb->tw, tx = rest % jb->tw;
    int64_t len = jb->tw - tx < t1 - t ? jb->tw - tx : t1 - t;
    out[k++] = (run){n, ty, tx, len, t - t0};
    t += len;
  }
  return k;
}

/* The packed transformed input of one task: bp [a * a][panel][cg][PANEL]
 * from channels c0 + c_lo .. c0 + c_hi.  A window that reaches past the plane (the
 * padding, or beyond the last tiles) is first copied with zeros around.
 * Each group of up to 8 tiles writes whole vectors within its channel's
 * row of the panel: the spare lanes land on places a later group of the
 * same channel overwrites, or on lanes past the last tile (computed, not
 * stored).  Channels may be packed by different threads. */
INLINE void pack_input(int a, int m, const job *jb, const run *runs, int nruns, int64_t c0,
                       int64_t c_lo, int64_t c_hi, float *bp, int64_t bps) {
  const ns_conv2d_shape *s = jb->s;
  const float *x = jb->x;
  int64_t in_item = jb->in_item;
  /* the columns 8 tiles read: loads of 8 m floats from each multiple of
   * m below a */
  int64_t h = s->height, w = s->width, pad = s->pad_h, win = (a + m - 1) / m * m + 7 * m;
  float buf[A_MAX * (A_MAX + 32)];
  for (int64_t c = c_lo; c < c_hi; c++)
    for (int k = 0; k < nruns; k++) {
      const run *ru = &runs[k];
      const float *pl = x + ru->n * in_item + (c0 + c) * h * w;
      int64_t y0 = m * ru->ty - pad;
      for (int64_t q = 0, lanes; q < ru->len; q += lanes) {
        int64_t at = ru->pos + q, off = at % PANEL; /* groups stay inside a panel */
        lanes = ru->len - q < LANES ? ru->len - q : LANES;
        if (lanes > PANEL - off) lanes = PANEL - off;
        int64_t x0 = m * (ru->tx + q) - pad, ps = w;
        const float *p;
        if (y0 >= 0 && y0 + a <= h && x0 >= 0 && x0 + win <= w) {
          p = pl + y0 * w + x0;
        } else {
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
        input_tiles(a, m, p, ps, bp + at / PANEL * pstride(jb->cg) + c * PANEL + off, bps,
                    (int)(PANEL - off));
      }
    }
}

/* The packed transformed input of tiles [t0, t1) of group g, channels
 * [c_lo, c_hi): bp as pack_input's, planes bp_plane(cg, panels) apart. */
INLINE void pack_task(int a, int m, const job *jb, int64_t g, int64_t t0, int64_t t1,
                      int64_t c_lo, int64_t c_hi, float *bp) {
  int panels = (int)((t1 - t0 + PANEL - 1) / PANEL);
  int64_t aa = a * a, ps = pstride(jb->cg), bps = bp_plane(jb->cg, panels);
  run runs[PANEL * PANELS_MAX];
  int nruns = task_runs(jb, t0, t1, runs);
  int64_t tail = (t1 - t0) % PANEL; /* lanes past the last tile: computed, not stored */
  if (tail)
    for (int64_t xi = 0; xi < aa; xi++)
      for (int64_t c = c_lo; c < c_hi; c++)
        memset(bp + xi * bps + (panels - 1) * ps + c * PANEL + tail, 0,
               (size_t)(PANEL - tail) * sizeof(float));
  pack_input(a, m, jb, runs, nruns, g * jb->cg, c_lo, c_hi, bp, bps);
}

/* For every MR output channels of [o_lo, o_hi): the a * a products of
 * the packed input bp of tiles [t0, t1) (the micro-kernel over all cg at
 * once, so each sum has one order whatever the threads), into prod, and
 * their output transform. */
INLINE void compute_task(int a, int m, const job *jb, int64_t g, int64_t t0, int64_t t1,
                         int64_t o_lo, int64_t o_hi, const float *bp, float *prod) {
  const ns_conv2d_shape *s = jb->s;
  int panels = (int)((t1 - t0 + PANEL - 1) / PANEL);
  int64_t aa = a * a, cg = jb->cg, ps = pstride(cg), bps = bp_plane(cg, panels);
  int64_t ld = prod_ld(panels), oh = s->out_h, ow = s->out_w;
  const float *u = jb->u + g * aa * jb->su;
  run runs[PANEL * PANELS_MAX];
  int nruns = task_runs(jb, t0, t1, runs);
  for (int64_t o0 = o_lo; o0 < o_hi; o0 += MR) {
    int rows = o_hi - o0 < MR ? (int)(o_hi - o0) : MR;
    for (int64_t xi = 0; xi < aa; xi++) {
      const float *ap = u + xi * jb->su + o0 * cg; /* MR filters packed */
      for (int pn = 0; pn < panels; pn++) /* the weights stay in L1 across panels */
        jb->kern(cg, ap, bp + xi * bps + pn * ps, prod + xi * MR * ld + pn * PANEL, ld);
    }
    for (int r = 0; r < rows; r++) {
      int64_t o = g * jb->og + o0 + r;
      float sc = jb->scale ? jb->scale[o] : 1.0f, b = jb->bias ? jb->bias[o] : 0.0f;
      for (int k = 0; k < nruns; k++) {
        const run *ru = &runs[k];
        float *pl = jb->y + ru->n * jb->out_item + o * oh * ow;
        for (int64_t q = 0; q < ru->len; q += LANES) {
          int lanes = ru->len - q < LANES ? (int)(ru->len - q) : LANES;
          int64_t yy = m * ru->ty, xx = m * (ru->tx + q);
          output_tiles(a, m, prod + r * ld + ru->pos + q, MR * ld, sc, b, jb->relu, pl + yy * ow + xx,
                       ow, lanes, oh - yy, ow - xx);
        }
      }
    }
  }
}

/* Both for the tile sizes in use, with constant bounds, twice: for
 * AVX2+FMA (chosen at run time, as the GEMM kernels) and for any x86-64. */
#if defined(__x86_64__) && defined(__GNUC__)
#define NS_AVX2 __attribute__((target("avx2,fma")))
#else
#define NS_AVX2
#endif

#define BY_TILE(CALL, ...)                                                                 \
  do {                                                                                     \
    if (jb->m == 4)                                                                        \
      CALL(6, 4, __VA_ARGS__);                                                             \
    else                                                                                   \
      CALL(6, 2, __VA_ARGS__);                                                             \
  } while (0)
#define TASK_FUNCS(SUFFIX, ATTR)                                                           \
  ATTR static void pack##SUFFIX(int a, const job *jb, int64_t g, int64_t t0, int64_t t1,  \
                                int64_t c_lo, int64_t c_hi, float *bp) {                  \
    BY_TILE(pack_task, jb, g, t0, t1, c_lo, c_hi, bp);                                     \
  }                                                                                        \
  ATTR static void compute##SUFFIX(int a, const job *jb, int64_t g, int64_t t0, int64_t t1, \
                                   int64_t o_lo, int64_t o_hi, const float *bp,           \
                                   float *prod) {                                          \
    BY_TILE(compute_task, jb, g, t0, t1, o_lo, o_hi, bp, prod);                            \
  }
TASK_FUNCS(_c, )
TASK_FUNCS(_avx2, NS_AVX2)

int64_t ns_winograd_weights_count(const ns_conv2d_shape *s) {
  ns_conv2d_shape e = effective(s);
  int64_t aa = (int64_t)side(&e) * side(&e);
  return e.group * aa * u_plane(&e);
}

/* U of every group (planes su apart, groups aa su apart), inside the
 * caller's parallel region. */
static void transform_groups(const ns_conv2d_shape *s, const ns_conv2d_shape *e, const float *w,
                             float *u) {
  int64_t aa = (int64_t)side(e) * side(e), og = s->num_output / s->group;
  int64_t per_group = og * (s->channels / s->group) * s->kernel_h * s->kernel_w;
  for (int64_t g = 0; g < s->group; g++)
    transform_weights(s, e, w + g * per_group, u + g * aa * u_plane(e));
}

void ns_winograd_weights(const ns_conv2d_shape *s, const float *w, float *u, int threads) {
  ns_conv2d_shape e = effective(s);
#pragma omp parallel num_threads(ns_kernel_threads(threads))
  transform_groups(s, &e, w, u);
}

void ns_winograd_conv(const ns_conv2d_shape *s, int64_t num, const float *w, const float *u_ready,
                      const ns_conv_epi *epi, const float *x, float *y, float *scratch,
                      int threads) {
  ns_conv_epi none = {NULL, NULL, NULL, 0};
  if (!epi) epi = &none;
  ns_conv2d_shape e = effective(s);
  int a = side(&e);
  int64_t cg = e.channels / e.group, og = e.num_output / e.group;
  int m = tile_of(&e);
  int64_t tw = (e.out_w + m - 1) / m, tiles = (e.out_h + m - 1) / m * tw;
  int64_t in_item = s->channels * s->height * s->width, out_item = e.num_output * e.out_h * e.out_w;
  int64_t chunk = s2d_items(s, &e, num), xs_floats = strided(s) ? chunk * e.channels * e.height * e.width : 0;
  float *u = u_ready ? (float *)u_ready : scratch, *xs = scratch + ns_winograd_weights_count(s);
  float *shared = xs + (xs_floats + 15) / 16 * 16, *per = shared + shared_floats(&e);
  job jb = {&e, m, tw, tiles, cg, og, e.channels * e.height * e.width, out_item, u_plane(&e), u,
            epi->scale, epi->bias, NULL, NULL, epi->relu, ns_gemm_packed_micro_kernel()};
  int nt = ns_kernel_threads(threads), avx2 = ns_gemm_avx2();
  int64_t span = task_span(&e), blocks = (og + MR - 1) / MR;
#pragma omp parallel num_threads(nt)
  {
    float *mine = per + (int64_t)omp_get_thread_num() * thread_floats(&e);
    float *prod = mine + (int64_t)a * a * bp_plane(cg, (int)span);
    if (!u_ready) transform_groups(s, &e, w, u);
    for (int64_t n0 = 0; n0 < num; n0 += chunk) {
      int64_t items = num - n0 < chunk ? num - n0 : chunk, ntiles = items * tiles;
      const float *xc = x + n0 * in_item;
      if (strided(s)) {
        space_to_depth(s, &e, xc, items, xs);
        xc = xs;
      }
      job cj = jb; /* this chunk's */
      cj.x = xc, cj.y = y + n0 * out_item;
      int64_t panels = (ntiles + PANEL - 1) / PANEL, spans = (panels + span - 1) / span;
      if (e.group * spans >= 4 * nt) {
        /* Tasks of `span` panels of one group, each packing its own input
         * and multiplying it for every output channel: no meeting but
         * the last. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < e.group * spans; t++) {
          int64_t g = t / spans, t0 = t % spans * span * PANEL;
          int64_t t1 = t0 + span * PANEL < ntiles ? t0 + span * PANEL : ntiles;
          if (avx2) {
            pack_avx2(a, &cj, g, t0, t1, 0, cg, mine);
            compute_avx2(a, &cj, g, t0, t1, 0, og, mine, prod);
          } else {
            pack_c(a, &cj, g, t0, t1, 0, cg, mine);
            compute_c(a, &cj, g, t0, t1, 0, og, mine, prod);
          }
        }
      } else {
        /* Few panels (a small batch-1 map): the threads pack up to
         * PANELS_MAX of them together, then share out the output
         * channels, so that the input is transformed once. */
        int64_t sspan = panels < PANELS_MAX ? panels : PANELS_MAX;
        for (int64_t g = 0; g < e.group; g++)
          for (int64_t t0 = 0; t0 < ntiles; t0 += sspan * PANEL) {
            int64_t t1 = t0 + sspan * PANEL < ntiles ? t0 + sspan * PANEL : ntiles;
#pragma omp for schedule(static)
            for (int64_t c = 0; c < cg; c++) {
              if (avx2)
                pack_avx2(a, &cj, g, t0, t1, c, c + 1, shared);
              else
                pack_c(a, &cj, g, t0, t1, c, c + 1, shared);
            }
#pragma omp for schedule(dynamic, 1)
            for (int64_t ob = 0; ob < blocks; ob++) {
              int64_t o_hi = (ob + 1) * MR < og ? (ob + 1) * MR : og;
              if (avx2)
                compute_avx2(a, &cj, g, t0, t1, ob * MR, o_hi, shared, prod);
              else
                compute_c(a, &cj, g, t0, t1, ob * MR, o_hi, shared, prod);
            }
          }
      }
    }
  }
}
