/* One-row products of low-bit weights with int8 activations: what a decoding step multiplies.
 *
 * Decoding one token reads every weight once, so its speed is the bytes read. torch has no CPU op
 * that reads 4-bit weights at memory speed on x86 (its int4 kernel takes bf16 activations and is
 * compute-bound); llama.cpp's lead is 4-bit x int8 dot products. This file is that product, for
 * one activation row, compiled on the user's machine (`lowbit_kernel.py`), for AVX-512 VNNI or AVX2.
 *
 * Activations: quantized per group of 32 (int8 codes q, scale dx: x ~ dx * q).
 * Weights, in tiles of 16 rows: a tile's group of 32 columns is one record.
 *   q4 record (320 bytes): 4 chunks of 64 bytes, then 16 f16 scales d, then 16 f16 offsets m.
 *     Chunk c holds columns 8c..8c+7: row i's 4 bytes at 4i, byte j's low nibble is column 8c+j,
 *     its high nibble column 8c+4+j. The weight is d * code - m (Q4_K's own form).
 *   q8 record (512 bytes): 8 chunks of 64 bytes; chunk c holds columns 4c..4c+3, row i's 4 signed
 *     bytes at 4i. One f32 scale a row, apart.
 * So each 32-bit lane of a vector is one row, and one broadcast of 4 activation codes multiplies
 * 16 rows at once: no horizontal sums. */

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>

#define ROWS 16
#define GROUP 32
#define Q4_RECORD 320
#define Q8_RECORD 512

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define LOWBIT_ISA 2
#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#define LOWBIT_ISA 1
#else
#define LOWBIT_ISA 0
#endif

/* 2: AVX-512 VNNI, 1: AVX2, 0: neither (the caller keeps its other kernel). */
int lowbit_isa(void) { return LOWBIT_ISA; }

/* x (k floats) -> codes q, and per group: scale dx, dx * sum(q) (for the offsets), sum(q). */
void lowbit_quantize(const float *x, int k, int8_t *q, float *dx, float *dsum, int32_t *qsum) {
    for (int g = 0; g < k / GROUP; g++) {
        const float *v = x + g * GROUP;
        float peak = 0.f;
        for (int j = 0; j < GROUP; j++) peak = fmaxf(peak, fabsf(v[j]));
        float scale = peak / 127.f, inverse = peak > 0.f ? 127.f / peak : 0.f;
        int32_t sum = 0;
        for (int j = 0; j < GROUP; j++) {
            int c = (int)lrintf(v[j] * inverse);
            q[g * GROUP + j] = (int8_t)c;
            sum += c;
        }
        dx[g] = scale;
        dsum[g] = scale * (float)sum;
        qsum[g] = sum;
    }
}

typedef struct {
    const uint8_t *w;
    const float *row_scale; /* q8 only */
    const int8_t *q;
    const float *dx, *dsum;
    const int32_t *qsum;
    float *y;
    int groups, tiles, q4;
} product_t;

#if LOWBIT_ISA == 2
static void q4_tiles(const product_t *p, int t0, int t1) {
    const __m512i low = _mm512_set1_epi8(0x0F);
    for (int t = t0; t < t1; t++) {
        const uint8_t *r = p->w + (size_t)t * p->groups * Q4_RECORD;
        __m512 acc = _mm512_setzero_ps();
        for (int g = 0; g < p->groups; g++, r += Q4_RECORD) {
            const int32_t *x = (const int32_t *)(p->q + g * GROUP);
            __m512i sum = _mm512_setzero_si512();
            for (int c = 0; c < 4; c++) {
                __m512i v = _mm512_loadu_si512(r + 64 * c);
                sum = _mm512_dpbusd_epi32(sum, _mm512_and_si512(v, low), _mm512_set1_epi32(x[2 * c]));
                sum = _mm512_dpbusd_epi32(sum, _mm512_and_si512(_mm512_srli_epi16(v, 4), low), _mm512_set1_epi32(x[2 * c + 1]));
            }
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r + 256)));
            __m512 m = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r + 288)));
            acc = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(p->dx[g])), _mm512_cvtepi32_ps(sum), acc);
            acc = _mm512_fnmadd_ps(m, _mm512_set1_ps(p->dsum[g]), acc);
        }
        _mm512_storeu_ps(p->y + t * ROWS, acc);
    }
}

static void q8_tiles(const product_t *p, int t0, int t1) {
    /* dpbusd multiplies unsigned by signed bytes: the weights go in shifted by 128 (w ^ 0x80), and
       128 * sum(q) comes off each group's sum. */
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int t = t0; t < t1; t++) {
        const uint8_t *r = p->w + (size_t)t * p->groups * Q8_RECORD;
        __m512 acc = _mm512_setzero_ps();
        for (int g = 0; g < p->groups; g++, r += Q8_RECORD) {
            const int32_t *x = (const int32_t *)(p->q + g * GROUP);
            __m512i sum = _mm512_set1_epi32(-128 * p->qsum[g]);
            for (int c = 0; c < 8; c++) {
                __m512i v = _mm512_xor_si512(_mm512_loadu_si512(r + 64 * c), flip);
                sum = _mm512_dpbusd_epi32(sum, v, _mm512_set1_epi32(x[c]));
            }
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(p->dx[g]), acc);
        }
        _mm512_storeu_ps(p->y + t * ROWS, _mm512_mul_ps(acc, _mm512_loadu_ps(p->row_scale + t * ROWS)));
    }
}
#elif LOWBIT_ISA == 1
/* u8 x s8 pairs summed to int16 (maddubs), then to int32 (madd with ones). */
static inline __m256i dot4(__m256i sum, __m256i u, __m256i s, __m256i ones) {
    return _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), ones));
}

static void q4_tiles(const product_t *p, int t0, int t1) {
    const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    for (int t = t0; t < t1; t++) {
        const uint8_t *r = p->w + (size_t)t * p->groups * Q4_RECORD;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (int g = 0; g < p->groups; g++, r += Q4_RECORD) {
            const int32_t *x = (const int32_t *)(p->q + g * GROUP);
            __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
            for (int c = 0; c < 4; c++) {
                __m256i xl = _mm256_set1_epi32(x[2 * c]), xh = _mm256_set1_epi32(x[2 * c + 1]);
                __m256i v0 = _mm256_loadu_si256((const __m256i *)(r + 64 * c));
                __m256i v1 = _mm256_loadu_si256((const __m256i *)(r + 64 * c + 32));
                sum0 = dot4(sum0, _mm256_and_si256(v0, low), xl, ones);
                sum0 = dot4(sum0, _mm256_and_si256(_mm256_srli_epi16(v0, 4), low), xh, ones);
                sum1 = dot4(sum1, _mm256_and_si256(v1, low), xl, ones);
                sum1 = dot4(sum1, _mm256_and_si256(_mm256_srli_epi16(v1, 4), low), xh, ones);
            }
            __m256 dx = _mm256_set1_ps(p->dx[g]), ds = _mm256_set1_ps(p->dsum[g]);
            __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r + 256)));
            __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r + 272)));
            __m256 m0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r + 288)));
            __m256 m1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r + 304)));
            acc0 = _mm256_fnmadd_ps(m0, ds, _mm256_fmadd_ps(_mm256_mul_ps(d0, dx), _mm256_cvtepi32_ps(sum0), acc0));
            acc1 = _mm256_fnmadd_ps(m1, ds, _mm256_fmadd_ps(_mm256_mul_ps(d1, dx), _mm256_cvtepi32_ps(sum1), acc1));
        }
        _mm256_storeu_ps(p->y + t * ROWS, acc0);
        _mm256_storeu_ps(p->y + t * ROWS + 8, acc1);
    }
}

static void q8_tiles(const product_t *p, int t0, int t1) {
    /* maddubs wants one unsigned side: |w| times x carrying w's sign (no int16 overflow: 2*127*127). */
    const __m256i ones = _mm256_set1_epi16(1);
    for (int t = t0; t < t1; t++) {
        const uint8_t *r = p->w + (size_t)t * p->groups * Q8_RECORD;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (int g = 0; g < p->groups; g++, r += Q8_RECORD) {
            const int32_t *x = (const int32_t *)(p->q + g * GROUP);
            __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
            for (int c = 0; c < 8; c++) {
                __m256i xc = _mm256_set1_epi32(x[c]);
                __m256i v0 = _mm256_loadu_si256((const __m256i *)(r + 64 * c));
                __m256i v1 = _mm256_loadu_si256((const __m256i *)(r + 64 * c + 32));
                sum0 = dot4(sum0, _mm256_abs_epi8(v0), _mm256_sign_epi8(xc, v0), ones);
                sum1 = dot4(sum1, _mm256_abs_epi8(v1), _mm256_sign_epi8(xc, v1), ones);
            }
            __m256 dx = _mm256_set1_ps(p->dx[g]);
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum0), dx, acc0);
            acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum1), dx, acc1);
        }
        _mm256_storeu_ps(p->y + t * ROWS, _mm256_mul_ps(acc0, _mm256_loadu_ps(p->row_scale + t * ROWS)));
        _mm256_storeu_ps(p->y + t * ROWS + 8, _mm256_mul_ps(acc1, _mm256_loadu_ps(p->row_scale + t * ROWS + 8)));
    }
}
#else
static void q4_tiles(const product_t *p, int t0, int t1) { (void)p, (void)t0, (void)t1; }
static void q8_tiles(const product_t *p, int t0, int t1) { (void)p, (void)t0, (void)t1; }
#endif

/* -- threads: OpenMP's, the very runtime torch runs on (libgomp.so.1 is loaded by torch first, and
   this library binds to it), so its threads are those torch keeps warm. A pool of our own beside
   torch's spinning threads oversubscribed 2 cores: steps took twice as long. */

static void run(const product_t *p) {
    int threads = omp_get_max_threads();
    if (threads > p->tiles) threads = p->tiles;
#pragma omp parallel num_threads(threads)
    {
        int share = omp_get_thread_num(), shares = omp_get_num_threads();
        int t0 = (int)((long)p->tiles * share / shares), t1 = (int)((long)p->tiles * (share + 1) / shares);
        if (p->q4) q4_tiles(p, t0, t1);
        else q8_tiles(p, t0, t1);
    }
}

/* y (rows floats) = W x for one activation row, quantized by `lowbit_quantize`. rows % 16 == 0. */
void lowbit_product(const uint8_t *w, const float *row_scale, int q4, int rows, int cols, const int8_t *q,
                    const float *dx, const float *dsum, const int32_t *qsum, float *y) {
    product_t p = {w, row_scale, q, dx, dsum, qsum, y, cols / GROUP, rows / ROWS, q4};
    run(&p);
}
