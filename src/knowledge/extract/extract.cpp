// Type detection and the choice of extractor (see extract.hpp).
#include "knowledge/extract/extract.hpp"

#include <array>
#include <cctype>
#include <memory>
#include <optional>
#include <utility>

#include <magic.h>
#include <nlohmann/json.hpp>

#include "knowledge/extract/extractors.hpp"
#include "knowledge/extract/text_utils.hpp"

namespace parley::knowledge {

namespace {

constexpr size_t kSniffBytes = 64 << 10;   // what libmagic and the sniffers look at
constexpr size_t kPdfHeaderWindow = 1024;  // the PDF header may follow a little junk

struct MagicCloser {
  void operator()(magic_t cookie) const { magic_close(cookie); }
};

// libmagic's description of the content ("PNG image data, 1 x 1, 8-bit/color RGBA"); a
// cookie per thread, since one is not safe to share.
std::string magic_describe(std::string_view bytes) {
  thread_local std::unique_ptr<std::remove_pointer_t<magic_t>, MagicCloser> cookie;
  if (!cookie) {
    cookie.reset(magic_open(MAGIC_NONE | MAGIC_NO_CHECK_COMPRESS));
    if (!cookie || magic_load(cookie.get(), nullptr) != 0) {
      cookie.reset();
      return {};
    }
  }
  const char* answer =
      magic_buffer(cookie.get(), bytes.data(), std::min(bytes.size(), kSniffBytes));
  return answer == nullptr ? std::string() : std::string(answer);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string extension_of(std::string_view name) {
  const size_t slash = name.find_last_of("/\\");
  if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return lower(name.substr(dot + 1));
}

struct ExtensionFormat {
  std::string_view extension;
  Format format;
  std::string_view language;
};

constexpr std::array<ExtensionFormat, 48> kExtensions = {{
    {"txt", Format::kText, ""},
    {"text", Format::kText, ""},
    {"log", Format::kText, ""},
    {"rst", Format::kText, ""},
    {"csv", Format::kText, ""},
    {"tsv", Format::kText, ""},
    {"md", Format::kMarkdown, ""},
    {"markdown", Format::kMarkdown, ""},
    {"mdx", Format::kMarkdown, ""},
    {"html", Format::kHtml, ""},
    {"htm", Format::kHtml, ""},
    {"xhtml", Format::kHtml, ""},
    {"json", Format::kJson, ""},
    {"yaml", Format::kYaml, ""},
    {"yml", Format::kYaml, ""},
    {"pdf", Format::kPdf, ""},
    {"py", Format::kCode, "python"},
    {"pyi", Format::kCode, "python"},
    {"js", Format::kCode, "javascript"},
    {"mjs", Format::kCode, "javascript"},
    {"cjs", Format::kCode, "javascript"},
    {"jsx", Format::kCode, "javascript"},
    {"ts", Format::kCode, "typescript"},
    {"tsx", Format::kCode, "typescript"},
    {"css", Format::kCode, "css"},
    {"scss", Format::kCode, "css"},
    {"c", Format::kCode, "c"},
    {"h", Format::kCode, "c"},
    {"cc", Format::kCode, "c++"},
    {"cpp", Format::kCode, "c++"},
    {"cxx", Format::kCode, "c++"},
    {"hpp", Format::kCode, "c++"},
    {"go", Format::kCode, "go"},
    {"rs", Format::kCode, "rust"},
    {"java", Format::kCode, "java"},
    {"kt", Format::kCode, "kotlin"},
    {"rb", Format::kCode, "ruby"},
    {"php", Format::kCode, "php"},
    {"sh", Format::kCode, "shell"},
    {"bash", Format::kCode, "shell"},
    {"sql", Format::kCode, "sql"},
    {"swift", Format::kCode, "swift"},
    {"cs", Format::kCode, "c#"},
    {"scala", Format::kCode, "scala"},
    {"lua", Format::kCode, "lua"},
    {"toml", Format::kText, ""},
    {"ini", Format::kText, ""},
    {"xml", Format::kText, ""},
}};

bool looks_like_pdf(std::string_view bytes) {
  return bytes.substr(0, kPdfHeaderWindow).find("%PDF-") != std::string_view::npos;
}

// UTF-16 with a byte-order mark, as UTF-8; lone surrogates become U+FFFD.
std::string utf16_to_utf8(std::string_view bytes, bool little_endian) {
  std::string out;
  out.reserve(bytes.size());
  const auto unit = [&](size_t i) {
    const auto a = static_cast<uint8_t>(bytes[i]);
    const auto b = static_cast<uint8_t>(bytes[i + 1]);
    return static_cast<uint32_t>(little_endian ? (a | (b << 8)) : ((a << 8) | b));
  };
  const auto put = [&](uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  };
  for (size_t i = 2; i + 1 < bytes.size(); i += 2) {
    const uint32_t u = unit(i);
    if (u >= 0xD800 && u <= 0xDBFF && i + 3 < bytes.size()) {
      const uint32_t low = unit(i + 2);
      if (low >= 0xDC00 && low <= 0xDFFF) {
        put(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00));
        i += 2;
        continue;
      }
    }
    put(u >= 0xD800 && u <= 0xDFFF ? 0xFFFD : u);
  }
  return out;
}

// Control characters other than tab, line breaks and form feed: a text file has almost none.
bool mostly_text(std::string_view bytes) {
  const std::string_view sample = bytes.substr(0, kSniffBytes);
  size_t control = 0;
  for (char c : sample) {
    const auto b = static_cast<uint8_t>(c);
    if (b == 0) return false;
    if (b < 0x20 && b != '\t' && b != '\n' && b != '\r' && b != '\f') ++control;
  }
  return control * 100 <= sample.size();  // at most 1%
}

// The content as UTF-8 text, or nothing when it is not text.
std::optional<std::string> as_text(std::string_view bytes) {
  if (bytes.size() >= 2) {
    const auto b0 = static_cast<uint8_t>(bytes[0]);
    const auto b1 = static_cast<uint8_t>(bytes[1]);
    if (b0 == 0xFF && b1 == 0xFE) return utf16_to_utf8(bytes, true);
    if (b0 == 0xFE && b1 == 0xFF) return utf16_to_utf8(bytes, false);
  }
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  if (!mostly_text(bytes)) return std::nullopt;
  if (valid_utf8(bytes)) return std::string(bytes);
  return windows1252_to_utf8(bytes);
}

Format sniff_text_format(std::string_view text, size_t file_size) {
  const std::string_view head = trim(text.substr(0, kSniffBytes));
  // JSON: checked in full when the sample is the whole file; a larger file that opens like
  // JSON is taken for JSON, and read as plain text if it does not parse (extract()).
  if (!head.empty() && (head.front() == '{' || head.front() == '[')) {
    if (file_size > kSniffBytes || nlohmann::json::accept(text)) return Format::kJson;
  }
  const std::string start = lower(head.substr(0, 512));
  if (start.starts_with("<!doctype html") || start.starts_with("<html") ||
      start.find("<body") != std::string::npos) {
    return Format::kHtml;
  }
  // Markdown: an ATX heading or a code fence at the start of a line.
  for (const std::string_view marker : {"\n# ", "\n## ", "\n### ", "\n```"}) {
    if (head.starts_with(marker.substr(1)) || head.find(marker) != std::string_view::npos) {
      return Format::kMarkdown;
    }
  }
  return Format::kText;
}

}  // namespace

std::string_view format_mime(Format format) {
  switch (format) {
    case Format::kText:
      return "text/plain";
    case Format::kMarkdown:
      return "text/markdown";
    case Format::kHtml:
      return "text/html";
    case Format::kPdf:
      return "application/pdf";
    case Format::kJson:
      return "application/json";
    case Format::kYaml:
      return "application/yaml";
    case Format::kCode:
      return "text/x-source";
  }
  return "text/plain";
}

Result<DetectedType> detect_type(std::string_view bytes, std::string_view name) {
  const std::string extension = extension_of(name);
  const ExtensionFormat* by_name = nullptr;
  for (const auto& entry : kExtensions) {
    if (entry.extension == extension) by_name = &entry;
  }
  if (looks_like_pdf(bytes)) return DetectedType{Format::kPdf, "", "application/pdf"};
  if (bytes.empty()) {
    return Error::invalid("the file is empty", "document_empty");
  }
  const std::optional<std::string> head = as_text(bytes.substr(0, kSniffBytes));
  if (!head) {
    std::string what = magic_describe(bytes);
    if (what.empty()) what = "binary data";
    std::string message = by_name != nullptr && by_name->format == Format::kPdf
                              ? "the file is named ." + extension + " but is not a PDF: "
                              : "the file is not a document Parley can read: ";
    return Error::invalid(message + "it looks like " + what +
                              ". Supported: PDF, HTML, Markdown, JSON, YAML, source code and "
                              "plain text",
                          "unsupported_type");
  }
  if (by_name != nullptr && by_name->format == Format::kPdf) {
    return Error::invalid("the file is named ." + extension + " but holds text, not a PDF",
                          "unsupported_type");
  }
  DetectedType type;
  if (by_name != nullptr) {
    type.format = by_name->format;
    type.language = std::string(by_name->language);
  } else {
    type.format = sniff_text_format(*head, bytes.size());
    type.sniffed = true;
  }
  type.mime = std::string(format_mime(type.format));
  return type;
}

Result<Extracted> extract(std::string_view bytes, std::string_view name,
                          const ExtractLimits& limits) {
  auto type = detect_type(bytes, name);
  if (!type) return std::move(type).error();
  if (type->format == Format::kPdf) return extract_pdf(bytes, limits);
  auto text = as_text(bytes);
  if (!text) {
    return Error::invalid("the file is not text: it has binary data past its beginning",
                          "unsupported_type");
  }
  Result<Extracted> out = [&]() -> Result<Extracted> {
    switch (type->format) {
      case Format::kMarkdown:
        return extract_markdown(*text, limits);
      case Format::kHtml:
        return extract_html(*text, limits);
      case Format::kJson: {
        auto json = extract_json(*text, limits);
        if (!json && type->sniffed && json.error().reason == "invalid_document") {
          return extract_plain_text(*text, limits);
        }
        return json;
      }
      case Format::kYaml:
        return extract_yaml(*text, limits);
      case Format::kCode:
        return extract_source_code(*text, type->language, limits);
      default:
        return extract_plain_text(*text, limits);
    }
  }();
  if (out && out->text.empty()) {
    return Error::invalid("the file has no text", "document_empty");
  }
  return out;
}

}  // namespace parley::knowledge
