// multipart/form-data parsing (see multipart.hpp).
#include "http/multipart.hpp"

#include <algorithm>
#include <cctype>

namespace parley::http {

namespace {

constexpr size_t kMaxParts = 64;
constexpr size_t kMaxPartHeaders = 8 << 10;
constexpr size_t kMaxBoundary = 70;  // RFC 2046

Error malformed(std::string message) {
  return Error::invalid("malformed multipart body: " + std::move(message), "malformed_multipart");
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value of parameter `key` in a header value ("form-data; name=\"f\"; filename=a.txt"):
// quoted (with backslash escapes) or a bare token. Parameter names compare without case.
std::optional<std::string> parameter(std::string_view value, std::string_view key) {
  size_t pos = value.find(';');
  while (pos != std::string_view::npos && pos < value.size()) {
    ++pos;
    while (pos < value.size() && (value[pos] == ' ' || value[pos] == '\t')) ++pos;
    const size_t eq = value.find('=', pos);
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string name = lower(trim(value.substr(pos, eq - pos)));
    size_t i = eq + 1;
    std::string parsed;
    if (i < value.size() && value[i] == '"') {
      ++i;
      while (i < value.size() && value[i] != '"') {
        if (value[i] == '\\' && i + 1 < value.size()) ++i;
        parsed += value[i++];
      }
      if (i < value.size()) ++i;  // closing quote
    } else {
      const size_t end = std::min(value.find(';', i), value.size());
      parsed = std::string(trim(value.substr(i, end - i)));
      i = end;
    }
    if (name == key) return parsed;
    pos = value.find(';', i);
  }
  return std::nullopt;
}

}  // namespace

bool is_multipart_form(std::string_view content_type) {
  return lower(trim(content_type.substr(0, content_type.find(';')))) == "multipart/form-data";
}

Result<std::vector<FormPart>> parse_multipart(std::string_view content_type,
                                              std::string_view body) {
  if (!is_multipart_form(content_type))
    return malformed("the content type is not multipart/form-data");
  const auto boundary = parameter(content_type, "boundary");
  if (!boundary || boundary->empty() || boundary->size() > kMaxBoundary) {
    return malformed("the Content-Type names no valid boundary");
  }
  const std::string delimiter = "--" + *boundary;
  // The first delimiter, at the start of the body or of a line.
  size_t pos = 0;
  if (body.substr(0, delimiter.size()) != delimiter) {
    pos = body.find("\r\n" + delimiter);
    if (pos == std::string_view::npos) return malformed("the boundary never appears");
    pos += 2;
  }
  pos += delimiter.size();
  std::vector<FormPart> parts;
  const std::string next_delimiter = "\r\n" + delimiter;
  while (true) {
    if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
    // Transport padding, then the line break that ends the delimiter line.
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") return malformed("a boundary line does not end with CRLF");
    pos += 2;
    if (parts.size() == kMaxParts) return malformed("more than 64 parts");
    const size_t headers_end = body.find("\r\n\r\n", pos);
    const bool no_headers = body.substr(pos, 2) == "\r\n";
    if (!no_headers &&
        (headers_end == std::string_view::npos || headers_end - pos > kMaxPartHeaders)) {
      return malformed("a part's headers are unterminated or larger than 8 KiB");
    }
    FormPart part;
    bool disposition = false;
    if (!no_headers) {
      std::string_view headers = body.substr(pos, headers_end - pos);
      while (!headers.empty()) {
        const size_t eol = std::min(headers.find("\r\n"), headers.size());
        const std::string_view line = headers.substr(0, eol);
        headers.remove_prefix(std::min(eol + 2, headers.size()));
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos) return malformed("a part header has no colon");
        const std::string name = lower(trim(line.substr(0, colon)));
        const std::string_view value = trim(line.substr(colon + 1));
        if (name == "content-disposition") {
          if (lower(trim(value.substr(0, value.find(';')))) != "form-data") {
            return malformed("a part's Content-Disposition is not form-data");
          }
          disposition = true;
          part.name = parameter(value, "name").value_or("");
          part.filename = parameter(value, "filename");
        } else if (name == "content-type") {
          part.content_type = std::string(value);
        }
      }
      pos = headers_end + 4;
    } else {
      pos += 2;
    }
    if (!disposition) return malformed("a part has no Content-Disposition header");
    const size_t end = body.find(next_delimiter, pos);
    if (end == std::string_view::npos) return malformed("the body ends inside a part");
    part.data = body.substr(pos, end - pos);
    parts.push_back(std::move(part));
    pos = end + next_delimiter.size();
  }
}

const FormPart* find_part(const std::vector<FormPart>& parts, std::string_view name) {
  const auto it =
      std::find_if(parts.begin(), parts.end(), [&](const FormPart& p) { return p.name == name; });
  return it == parts.end() ? nullptr : &*it;
}

}  // namespace parley::http
