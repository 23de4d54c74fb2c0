/* Deterministic random numbers for fillers (and dropout in training).
 * xoshiro256** seeded with splitmix64: same seed, same weights, any
 * platform. */
#ifndef NS_CORE_RNG_H
#define NS_CORE_RNG_H

#include <stdint.h>

typedef struct ns_rng {
  uint64_t s[4];
} ns_rng;

void ns_rng_seed(ns_rng *r, uint64_t seed);
uint64_t ns_rng_next(ns_rng *r);
/* Uniform in [0, 1). */
double ns_rng_uniform01(ns_rng *r);
/* Uniform in [a, b]. */
float ns_rng_uniform(ns_rng *r, float a, float b);
/* Normal(mean, std) by Box-Muller. */
float ns_rng_gaussian(ns_rng *r, float mean, float std);

#endif
