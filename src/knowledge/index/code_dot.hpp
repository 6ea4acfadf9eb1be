// The dot product of two vectors of 8-bit integers (the vector index's codes), for the CPU
// at hand: AVX-512 with VNNI, AVX2, or plain C++, chosen once when the program starts.
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

}  // namespace parley::knowledge
