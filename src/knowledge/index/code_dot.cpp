// 8-bit and 4-bit dot products (see code_dot.hpp).
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

int32_t nibble_dot_portable_impl(const int8_t* query, const uint8_t* packed, size_t n) {
  int32_t sum = 0;
  for (size_t block = 0; block < n; block += kNibbleBlock, packed += kNibbleBlock / 2) {
    for (size_t j = 0; j < kNibbleBlock / 2; ++j) {
      sum += static_cast<int32_t>(query[block + j]) * (packed[j] & 0x0F) +
             static_cast<int32_t>(query[block + kNibbleBlock / 2 + j]) * (packed[j] >> 4);
    }
  }
  return sum;
}

#if defined(__x86_64__)
// A block a step: the low and the high four bits as bytes, each multiplied by its query bytes
// (unsigned by signed) and added in fours into 32 bits.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int32_t nibble_dot_avx512_impl(
    const int8_t* query, const uint8_t* packed, size_t n) {
  const __m512i low_bits = _mm512_set1_epi8(0x0F);
  __m512i sum = _mm512_setzero_si512();
  for (size_t block = 0; block < n; block += kNibbleBlock, packed += kNibbleBlock / 2) {
    const __m512i both = _mm512_loadu_si512(packed);
    const __m512i low = _mm512_and_si512(both, low_bits);
    const __m512i high = _mm512_and_si512(_mm512_srli_epi16(both, 4), low_bits);
    sum = _mm512_dpbusd_epi32(sum, low, _mm512_loadu_si512(query + block));
    sum = _mm512_dpbusd_epi32(sum, high, _mm512_loadu_si512(query + block + kNibbleBlock / 2));
  }
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, sum);
  int32_t total = 0;
  for (const int32_t lane : lanes) total += lane;
  return total;
}

// Half a block a step: pairs multiplied and added into 16 bits (at most 2 * 15 * 127, never
// saturating), then into 32.
__attribute__((target("avx2"))) int32_t nibble_dot_avx2_impl(const int8_t* query,
                                                             const uint8_t* packed, size_t n) {
  const __m256i low_bits = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i sum = _mm256_setzero_si256();
  for (size_t block = 0; block < n; block += kNibbleBlock, packed += kNibbleBlock / 2) {
    for (size_t half = 0; half < kNibbleBlock / 2; half += 32) {
      const __m256i both = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed + half));
      const __m256i low = _mm256_and_si256(both, low_bits);
      const __m256i high = _mm256_and_si256(_mm256_srli_epi16(both, 4), low_bits);
      const __m256i q_low =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(query + block + half));
      const __m256i q_high = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(query + block + kNibbleBlock / 2 + half));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(low, q_low), ones));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(high, q_high), ones));
    }
  }
  const __m128i half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
  const __m128i quarter = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4E));
  const __m128i one = _mm_add_epi32(quarter, _mm_shuffle_epi32(quarter, 0xB1));
  return _mm_cvtsi128_si32(one);
}
#endif

}  // namespace

NibbleDot nibble_dot_portable() { return &nibble_dot_portable_impl; }

NibbleDot nibble_dot_avx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return &nibble_dot_avx2_impl;
#endif
  return nullptr;
}

NibbleDot nibble_dot_avx512() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni")) {
    return &nibble_dot_avx512_impl;
  }
#endif
  return nullptr;
}

NibbleDot nibble_dot() {
  if (const NibbleDot best = nibble_dot_avx512()) return best;
  if (const NibbleDot good = nibble_dot_avx2()) return good;
  return nibble_dot_portable();
}

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
