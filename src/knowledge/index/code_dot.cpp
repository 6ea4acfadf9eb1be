// 8-bit dot products (see code_dot.hpp).
#include "knowledge/index/code_dot.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace parley::knowledge {

namespace {

int32_t dot_portable(const int8_t* x, const int8_t* y, size_t n) {
  int32_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<int32_t>(x[i]) * static_cast<int32_t>(y[i]);
  return sum;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int32_t dot_avx512(const int8_t* x,
                                                                          const int8_t* y,
                                                                          size_t n) {
  __m512i sum = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    // 32 values widened to 16 bits, multiplied in pairs and added into 16 sums.
    const __m512i a =
        _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
    const __m512i b =
        _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + i)));
    sum = _mm512_dpwssd_epi32(sum, a, b);
  }
  // (Not _mm512_reduce_add_epi32: g++ 12 warns about its header's undefined upper half.)
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, sum);
  int32_t total = 0;
  for (const int32_t lane : lanes) total += lane;
  return total + dot_portable(x + i, y + i, n - i);
}

// 32 values a step: |x| (unsigned) times y with x's sign, multiplied and added in pairs into
// 16 bits (at most 2 * 127 * 127, so never saturating), then into 32 bits. Twice the values of
// widening to 16 bits first, which matters on CPUs without AVX-512.
__attribute__((target("avx2"))) int32_t dot_avx2(const int8_t* x, const int8_t* y, size_t n) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i sum = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + i));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, ones));
  }
  const __m128i half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
  const __m128i quarter = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4E));
  const __m128i one = _mm_add_epi32(quarter, _mm_shuffle_epi32(quarter, 0xB1));
  return _mm_cvtsi128_si32(one) + dot_portable(x + i, y + i, n - i);
}
#endif

}  // namespace

CodeDot code_dot_portable() { return &dot_portable; }

CodeDot code_dot_avx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return &dot_avx2;
#endif
  return nullptr;
}

CodeDot code_dot_avx512() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni")) {
    return &dot_avx512;
  }
#endif
  return nullptr;
}

CodeDot code_dot() {
  if (const CodeDot best = code_dot_avx512()) return best;
  if (const CodeDot good = code_dot_avx2()) return good;
  return code_dot_portable();
}

}  // namespace parley::knowledge
