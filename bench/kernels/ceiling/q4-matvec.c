// The q4_0 mat-vec's inner loop (wasm/assembly/dot-q4x4.ts, dot4RowsQ4x4U over a quad: per weight vector an
// and, an andnot and two vpdpbusd; per group of four blocks a shift, an add, a subtraction, a conversion and two
// products per row) written in C with AVX-VNNI intrinsics, 128-bit (what WebAssembly SIMD has) or, with -DWIDE,
// 256-bit (what native llama.cpp uses on AVX2 machines), over a matrix that stays in L2. It prints the bytes per
// second (quants + f32 scales, as bench/kernels counts them) and the cycles per quad group: the ceiling of this
// instruction mix on this core, against which the WASM kernel's speed is read (run.sh). The 256-bit build reads
// each 32-byte load as two groups' vectors, so its sums are not the kernel's: only its time is.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define COLS 1024
#define ROWS 512 // 320 KiB of quants and scales: in L2
#ifdef WIDE
typedef __m256i vec;
#define VBYTES 32
#define LOAD(p) _mm256_load_si256((const __m256i *)(p))
#define ZERO() _mm256_setzero_si256()
#define SPLAT8(c) _mm256_set1_epi8(c)
#define AND(a, b) _mm256_and_si256(a, b)
#define ANDNOT(m, v) _mm256_andnot_si256(m, v)
#define DOT(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#define HALF(v) _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1))
#else
typedef __m128i vec;
#define VBYTES 16
#define LOAD(p) _mm_load_si128((const __m128i *)(p))
#define ZERO() _mm_setzero_si128()
#define SPLAT8(c) _mm_set1_epi8(c)
#define AND(a, b) _mm_and_si128(a, b)
#define ANDNOT(m, v) _mm_andnot_si128(m, v)
#define DOT(acc, u, s) _mm_dpbusd_avx_epi32(acc, u, s)
#define HALF(v) (v)
#endif

static uint8_t W[ROWS * COLS / 2] __attribute__((aligned(64)));
static float WS[ROWS * COLS / 32] __attribute__((aligned(64)));
static int8_t X[2 * COLS] __attribute__((aligned(64)));
static int32_t XSUM[COLS / 32] __attribute__((aligned(64)));
static float XS[COLS / 32] __attribute__((aligned(64)));
static float Y[ROWS];

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

// the clock: four dependent adds per iteration retire at one a cycle
static double ghz(void) {
  long n = 400000000, x = 0;
  double t0 = seconds();
  for (long i = 0; i < n; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
  return n * 4.0 / (seconds() - t0) / 1e9;
}

static void matvec(void) {
  const vec m = SPLAT8(0x0f);
  const int groups = COLS / 128;
  for (int q = 0; q < ROWS / 4; q++) {
    const uint8_t *pw = W + (size_t)q * 4 * (COLS / 2);
    const float *pws = WS + (size_t)q * 4 * (COLS / 32);
    __m128 aA = _mm_setzero_ps(), aB = aA, aC = aA, aD = aA;
    for (int g = 0; g < groups; g++) {
      vec lA = ZERO(), lB = lA, lC = lA, lD = lA, hA = lA, hB = lA, hC = lA, hD = lA;
      const int8_t *px = X + g * 128;
      for (int k = 0; k < 64; k += VBYTES) {
        const vec xl = LOAD(px + 2 * k), xh = LOAD(px + 2 * k + VBYTES);
        vec v = LOAD(pw + k);
        lA = DOT(lA, AND(v, m), xl); hA = DOT(hA, ANDNOT(m, v), xh);
        v = LOAD(pw + 64 + k);
        lB = DOT(lB, AND(v, m), xl); hB = DOT(hB, ANDNOT(m, v), xh);
        v = LOAD(pw + 128 + k);
        lC = DOT(lC, AND(v, m), xl); hC = DOT(hC, ANDNOT(m, v), xh);
        v = LOAD(pw + 192 + k);
        lD = DOT(lD, AND(v, m), xl); hD = DOT(hD, ANDNOT(m, v), xh);
      }
      const __m128 xs = _mm_load_ps(XS + g * 4);
      const __m128i xo = _mm_slli_epi32(_mm_load_si128((const __m128i *)(XSUM + g * 4)), 3);
#define FINISH(acc, l, h, off) \
  acc = _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(_mm_sub_epi32(_mm_add_epi32(HALF(l), _mm_srai_epi32(HALF(h), 4)), xo)), _mm_mul_ps(_mm_load_ps(pws + off), xs)))
      FINISH(aA, lA, hA, 0); FINISH(aB, lB, hB, 4); FINISH(aC, lC, hC, 8); FINISH(aD, lD, hD, 12);
      pw += 256;
      pws += 16;
    }
    _mm_storeu_ps(Y + 4 * q, _mm_hadd_ps(_mm_hadd_ps(aA, aB), _mm_hadd_ps(aC, aD)));
  }
}

int main(void) {
  for (size_t i = 0; i < sizeof W; i++) W[i] = (uint8_t)(i * 37);
  for (size_t i = 0; i < sizeof WS / 4; i++) WS[i] = 0.01f * (float)(i % 7);
  for (size_t i = 0; i < sizeof X; i++) X[i] = (int8_t)((int)((i * 13) % 255) - 127);
  for (int i = 0; i < COLS / 32; i++) { XSUM[i] = i; XS[i] = 0.02f; }
  const double clock = ghz();
  double best = 1e9;
  for (int round = 0; round < 5; round++) {
    const long reps = 2000;
    const double t0 = seconds();
    for (long r = 0; r < reps; r++) matvec();
    const double t = (seconds() - t0) / reps;
    if (t < best) best = t;
  }
  const double bytes = (double)ROWS * (COLS / 2 + COLS / 32 * 4);
  const double groups = (double)(ROWS / 4) * (COLS / 128);
  // JSON for run.sh: the fastest of five rounds; y[0] keeps the compiler from dropping the work
  printf("{\"bits\": %d, \"gbps\": %.2f, \"cyclesPerGroup\": %.1f, \"ghz\": %.2f, \"y0\": %g}\n", VBYTES * 8, bytes / best / 1e9, best * clock * 1e9 / groups, clock, Y[0]);
  return 0;
}
