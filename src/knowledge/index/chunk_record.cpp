// Chunk records (see chunk_record.hpp). Layout: a version byte (1), then ordinal, page,
// page_end, start_offset and end_offset as zigzag varints, then document_id, section and text,
// each a varint length and its bytes.
#include "knowledge/index/chunk_record.hpp"

#include <algorithm>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace parley::knowledge {

namespace {

constexpr char kVersion = 1;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_signed(std::string& out, int64_t v) {
  put_varint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ >= bytes_.size()) return false;
      const auto b = static_cast<uint8_t>(bytes_[at_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;  // more than ten bytes: not ours
  }

  bool signed_varint(int64_t& v) {
    uint64_t u = 0;
    if (!varint(u)) return false;
    v = static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
    return true;
  }

  bool string(std::string& s) {
    uint64_t n = 0;
    if (!varint(n) || n > bytes_.size() - at_) return false;
    s.assign(bytes_.substr(at_, n));
    at_ += n;
    return true;
  }

  bool done() const { return at_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t at_ = 1;  // after the version byte
};

// Written by versions before the binary record: {"d","s","o","p","pe","a","b","t"}.
std::optional<ChunkRecord> decode_json(std::string_view bytes) {
  const auto d = nlohmann::json::parse(bytes, nullptr, false);
  if (!d.is_object()) return std::nullopt;
  const auto text = [&](const char* key, std::string& out) {
    const auto it = d.find(key);
    if (it == d.end()) return true;
    if (!it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  const auto integer = [&](const char* key, int64_t& out) {
    const auto it = d.find(key);
    if (it == d.end()) return true;
    if (!it->is_number_integer()) return false;  // (a float such as 1e99 has no int64_t)
    out = it->is_number_unsigned()
              ? static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX))
              : it->get<int64_t>();
    return true;
  };
  ChunkRecord r;
  if (!text("d", r.document_id) || !text("s", r.section) || !integer("o", r.ordinal) ||
      !integer("p", r.page) || !integer("pe", r.page_end) || !integer("a", r.start_offset) ||
      !integer("b", r.end_offset) || !text("t", r.text)) {
    return std::nullopt;  // a field of another type
  }
  return r;
}

}  // namespace

std::string encode_chunk_record(const ChunkRecord& r) {
  std::string out;
  out.reserve(32 + r.document_id.size() + r.section.size() + r.text.size());
  out += kVersion;
  for (const int64_t v : {r.ordinal, r.page, r.page_end, r.start_offset, r.end_offset}) {
    put_signed(out, v);
  }
  put_string(out, r.document_id);
  put_string(out, r.section);
  put_string(out, r.text);
  return out;
}

std::optional<ChunkRecord> decode_chunk_record(std::string_view bytes) {
  if (bytes.empty()) return std::nullopt;
  if (bytes.front() == '{') return decode_json(bytes);
  if (bytes.front() != kVersion) return std::nullopt;
  Reader in(bytes);
  ChunkRecord r;
  for (int64_t* v : {&r.ordinal, &r.page, &r.page_end, &r.start_offset, &r.end_offset}) {
    if (!in.signed_varint(*v)) return std::nullopt;
  }
  if (!in.string(r.document_id) || !in.string(r.section) || !in.string(r.text) || !in.done()) {
    return std::nullopt;
  }
  return r;
}

}  // namespace parley::knowledge
