// The dot product of two vectors of 8-bit integers (the vector index's codes), or of 8-bit
// with 4-bit ones, for the CPU at hand: AVX-512 with VNNI, AVX2, or plain C++.
//
// hnswlib's own distances pick their SIMD width when compiled, so a build for any x86-64 would
// get SSE alone; and g++ does not vectorise an 8-bit product well by itself (it kept to
// 128-bit registers, slower than the float distance it replaced).
#pragma once

#include <cstddef>
#include <cstdint>

namespace parley::knowledge {

// Components are -127..127, as the index's codes are (-128 never occurs in them).
using CodeDot = int32_t (*)(const int8_t* x, const int8_t* y, size_t n);

// The fastest this CPU runs.
CodeDot code_dot();

// Each implementation, for tests to compare; null where this CPU lacks the instructions.
CodeDot code_dot_portable();
CodeDot code_dot_avx2();
CodeDot code_dot_avx512();

// 4-bit codes, half the bytes to read (the memory recall index's): the dot product of n 8-bit
// values `query` (-127..127) with n unsigned 4-bit values (0..15) packed two to a byte, n a
// multiple of kNibbleBlock. In each block of 128 values, byte j holds value j in its low four
// bits and value j + 64 in its high four.
inline constexpr size_t kNibbleBlock = 128;
using NibbleDot = int32_t (*)(const int8_t* query, const uint8_t* packed, size_t n);
NibbleDot nibble_dot();
NibbleDot nibble_dot_portable();
NibbleDot nibble_dot_avx2();
NibbleDot nibble_dot_avx512();

}  // namespace parley::knowledge
