#include "kernels/depthwise.h"

#include <stddef.h>

#include "kernels/parallel.h"
#include "kernels/pgemm.h"

int ns_depthwise_applies(const ns_conv2d_shape *s) {
  return s->channels > 1 && s->group == s->channels && s->num_output == s->channels;
}

/* Output columns [lo, hi) read only inside the input row (every kx):
 * ox sw - pw >= 0 and ox sw - pw + (kw - 1) dw <= width - 1.  The
 * columns outside it check each tap. */
typedef struct dw_cols {
  int64_t lo, hi;
} dw_cols;

static dw_cols inner_columns(const ns_conv2d_shape *s) {
  dw_cols c;
  int64_t last = s->width - 1 + s->pad_w - (int64_t)(s->kernel_w - 1) * s->dilation_w;
  c.lo = (s->pad_w + s->stride_w - 1) / s->stride_w;
  c.hi = last < 0 ? 0 : last / s->stride_w + 1;
  if (c.lo > s->out_w) c.lo = s->out_w;
  if (c.hi > s->out_w) c.hi = s->out_w;
  if (c.hi < c.lo) c.hi = c.lo;
  return c;
}

/* row[ox] += the taps of kernel row wk over input row `in`, for the
 * columns outside [lo, hi), each tap checked against the row's ends. */
static inline __attribute__((always_inline)) void edge_columns(const ns_conv2d_shape *s,
                                                               dw_cols c, const float *wk,
                                                               const float *in, float *row) {
  for (int64_t ox = 0; ox < s->out_w; ox++) {
    if (ox == c.lo) ox = c.hi;
    if (ox >= s->out_w) break;
    for (int kx = 0; kx < s->kernel_w; kx++) {
      int64_t ix = ox * s->stride_w - s->pad_w + (int64_t)kx * s->dilation_w;
      if (ix >= 0 && ix < s->width) row[ox] += wk[kx] * in[ix];
    }
  }
}

/* row[ox] += the taps of wk for ox in [lo, hi): no checks, so the
 * compiler vectorises along the row. */
static inline __attribute__((always_inline)) void inner_columns_row(const ns_conv2d_shape *s,
                                                                    dw_cols c, const float *wk,
                                                                    const float *in,
                                                                    float *row) {
  const float *p = in - s->pad_w;
  for (int kx = 0; kx < s->kernel_w; kx++) {
    const float *q = p + (int64_t)kx * s->dilation_w;
    float wv = wk[kx];
    for (int64_t ox = c.lo; ox < c.hi; ox++) row[ox] += wv * q[ox * s->stride_w];
  }
}

/* Eight floats in a GCC vector (two SSE registers in the portable
 * build, one AVX register in the AVX2 one). */
typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* Unaligned load (a macro: a function returning a vector would change
 * the ABI in the portable build). */
#define load8(p)                        \
  __extension__({                       \
    v8 v_;                              \
    __builtin_memcpy(&v_, (p), sizeof v_); \
    v_;                                 \
  })

/* acc[i] += w0 p[i] + w1 p[i + 1] + w2 p[i + 2] for i < 8 (reads
 * p[0..9]); through a pointer: a vector return would change the ABI in
 * the portable build. */
static inline __attribute__((always_inline)) void taps3_s1(v8 *acc, const float *p,
                                                           const float *w) {
  *acc += w[0] * load8(p) + w[1] * load8(p + 1) + w[2] * load8(p + 2);
}

/* The same at stride 2: p[2 i], p[2 i + 1], p[2 i + 2] (reads p[0..17]). */
static inline __attribute__((always_inline)) void taps3_s2(v8 *acc, const float *p,
                                                           const float *w) {
  v8 a = load8(p), b = load8(p + 8), c = load8(p + 2), d = load8(p + 10);
  /* __builtin_shufflevector: GCC 12 and clang (the fuzz build) both have it */
  *acc += w[0] * __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14) +
          w[1] * __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15) +
          w[2] * __builtin_shufflevector(c, d, 0, 2, 4, 6, 8, 10, 12, 14);
}

/* One channel's plane, every kernel but the padded path's: x [height,
 * width] -> y [out_h, out_w]. */
static inline __attribute__((always_inline)) void one_plane(const ns_conv2d_shape *s, dw_cols c,
                                                            const float *w, float b,
                                                            const float *x, float *y, int relu) {
  for (int64_t oy = 0; oy < s->out_h; oy++) {
    float *row = y + oy * s->out_w;
    for (int64_t ox = 0; ox < s->out_w; ox++) row[ox] = b;
    for (int ky = 0; ky < s->kernel_h; ky++) {
      int64_t iy = oy * s->stride_h - s->pad_h + (int64_t)ky * s->dilation_h;
      if (iy < 0 || iy >= s->height) continue;
      const float *src = x + iy * s->width, *wrow = w + (int64_t)ky * s->kernel_w;
      edge_columns(s, c, wrow, src, row);
      inner_columns_row(s, c, wrow, src, row);
    }
    if (relu) /* NaN passes, as Caffe's ReLU */
      for (int64_t ox = 0; ox < s->out_w; ox++) row[ox] = row[ox] < 0.0f ? 0.0f : row[ox];
  }
}

/* The padded path: 3-wide kernels at stride 1 or 2, every output column
 * eight at a time from a copy of the plane inside a zero border (and
 * SLACK zeros after each row for the last vector's reads), so no column
 * or row is checked.  On 14x14 and 7x7 maps (MobileNet's last layers)
 * most columns are edge or tail columns for the in-place path above. */
enum { SLACK = 24 };

static int padded_applies(const ns_conv2d_shape *s) {
  return s->kernel_w == 3 && s->dilation_w == 1 && (s->stride_w == 1 || s->stride_w == 2);
}

static int64_t padded_row(const ns_conv2d_shape *s) { return s->width + 2 * s->pad_w + SLACK; }

static int64_t padded_floats(const ns_conv2d_shape *s) {
  return (s->height + 2 * (int64_t)s->pad_h) * padded_row(s);
}

/* dst[0..n) = src[0..n) for n < 8, element by element: GCC turns a plain
 * copy loop into a memcpy call, and those calls (one per row's tail)
 * took a third of a 14x14 layer; the empty asm keeps the loop. */
static inline __attribute__((always_inline)) void copy_short(float *dst, const float *src,
                                                             int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    dst[j] = src[j];
    __asm__ volatile("" ::: "memory");
  }
}

/* Copies plane x into buf's interior; the border stays as zeroed. */
static inline __attribute__((always_inline)) void pad_copy(const ns_conv2d_shape *s,
                                                           const float *x, float *buf) {
  int64_t ws = padded_row(s);
  for (int64_t iy = 0; iy < s->height; iy++) {
    float *d = buf + (iy + s->pad_h) * ws + s->pad_w;
    const float *r = x + iy * s->width;
    int64_t ix = 0;
    for (; ix + 8 <= s->width; ix += 8) {
      v8 v = load8(r + ix);
      __builtin_memcpy(d + ix, &v, sizeof v);
    }
    copy_short(d + ix, r + ix, s->width - ix);
  }
}

/* One output row of the padded path at column stride sw (a constant
 * where inlined); in: the first input row of its window, rows ws apart.
 * A row of at least 8 ends with a vector that overlaps the one before
 * (its lanes compute the same sums, so the columns written twice get the
 * same bits): no scalar tail.  A shorter row stores 8 anyway while they
 * land inside the plane (its later rows, written after), never past it:
 * the next plane may be another thread's. */
static inline __attribute__((always_inline)) void padded_row_out(
    const ns_conv2d_shape *s, const float *w, float b, const float *in, int64_t ws, float *row,
    int relu, int64_t room, const int sw) {
  int64_t ow = s->out_w;
  for (int64_t ox0 = 0; ox0 < ow; ox0 += 8) {
    int64_t ox = ox0 + 8 > ow && ow >= 8 ? ow - 8 : ox0;
    v8 acc = {b, b, b, b, b, b, b, b};
    for (int ky = 0; ky < s->kernel_h; ky++) {
      const float *p = in + (int64_t)ky * s->dilation_h * ws + ox * sw;
      if (sw == 1)
        taps3_s1(&acc, p, w + 3 * ky);
      else
        taps3_s2(&acc, p, w + 3 * ky);
    }
    if (relu) {
      const v8 zero = {0};
      acc = (v8)((v8i)acc & ~(acc < zero)); /* NaN compares false: passes */
    }
    if (ox + 8 <= room) { /* past the row's end: the plane's next rows, written later */
      __builtin_memcpy(row + ox, &acc, sizeof acc);
    } else {
      float t[8];
      __builtin_memcpy(t, &acc, sizeof acc);
      copy_short(row + ox, t, ow - ox);
    }
  }
}

static inline __attribute__((always_inline)) void padded_plane(const ns_conv2d_shape *s,
                                                               const float *w, float b,
                                                               const float *buf, float *y,
                                                               int relu) {
  int64_t ws = padded_row(s);
  for (int64_t oy = 0; oy < s->out_h; oy++) {
    const float *in = buf + oy * s->stride_h * ws;
    int64_t room = (s->out_h - oy) * s->out_w; /* floats from this row to the plane's end */
    if (s->stride_w == 1)
      padded_row_out(s, w, b, in, ws, y + oy * s->out_w, relu, room, 1);
    else
      padded_row_out(s, w, b, in, ws, y + oy * s->out_w, relu, room, 2);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define NS_AVX2 __attribute__((target("avx2,fma")))
#else
#define NS_AVX2
#endif

/* The planes of num items shared out whole, twice: for AVX2+FMA (chosen
 * at run time, as the GEMM kernels) and for any x86-64. */
#define PLANES_FUNC(SUFFIX, ATTR)                                                              \
  ATTR static void planes##SUFFIX(const ns_conv2d_shape *s, int64_t num, const float *w,       \
                                  const float *bias, const float *x, float *y, int relu,       \
                                  float *scratch, int nt) {                                    \
    dw_cols c = inner_columns(s);                                                              \
    int64_t in_plane = s->height * s->width, out_plane = s->out_h * s->out_w;                  \
    int64_t taps = (int64_t)s->kernel_h * s->kernel_w, planes = num * s->channels;             \
    int64_t pf = padded_floats(s);                                                             \
    int padded = padded_applies(s);                                                 \
    _Pragma("omp parallel num_threads(nt) if (nt > 1 && planes > 1)") {                        \
      float *buf = padded ? scratch + omp_get_thread_num() * pf : NULL;                        \
      if (buf) __builtin_memset(buf, 0, (size_t)pf * sizeof(float));                          \
      _Pragma("omp for schedule(static)") for (int64_t p = 0; p < planes; p++) {               \
        int64_t ch = p % s->channels;                                                          \
        float b = bias ? bias[ch] : 0.0f;                                                      \
        if (buf) {                                                                             \
          pad_copy(s, x + p * in_plane, buf);                                                  \
          padded_plane(s, w + ch * taps, b, buf, y + p * out_plane, relu);                     \
        } else {                                                                               \
          one_plane(s, c, w + ch * taps, b, x + p * in_plane, y + p * out_plane, relu);        \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
  }
PLANES_FUNC(_c, )
PLANES_FUNC(_avx2, NS_AVX2)

int64_t ns_depthwise_scratch_count(const ns_conv2d_shape *s, int threads) {
  if (!padded_applies(s)) return 0;
  return ns_kernel_threads(threads) * ((padded_floats(s) + 15) / 16 * 16);
}

void ns_depthwise_conv(const ns_conv2d_shape *s, int64_t num, const float *w, const float *bias,
                       const float *x, float *y, int relu, float *scratch, int threads) {
  int nt = ns_kernel_threads(threads);
  if (ns_gemm_avx2())
    planes_avx2(s, num, w, bias, x, y, relu, scratch, nt);
  else
    planes_c(s, num, w, bias, x, y, relu, scratch, nt);
}
