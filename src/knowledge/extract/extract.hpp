// A file in, its text and structure out (document.hpp): the one entry point ingestion uses.
//
// The type is decided from the content as well as the name. Content settles what kind of
// thing the file is: a PDF (by its header, whatever it is called), text (UTF-8, UTF-16 with a
// byte-order mark, or Windows-1252, converted to UTF-8), or something else — an image, an
// archive, an executable — which is refused with what libmagic says it is, even when it is
// named `.txt`. For text, the name's extension picks the format (.md, .html, .json, .yaml,
// .py, .js, .css ...); without a known extension the content is sniffed (JSON that parses,
// an HTML doctype, Markdown headings or fences), and otherwise it is plain text.
//
// Thread-safe; CPU-bound and possibly slow on large files (call it from a job, never from an
// I/O thread). Failures are Error values with a message meant for the person who uploaded the
// file: kInvalidArgument (reason "unsupported_type", "invalid_document",
// "document_encrypted", "document_empty", "document_too_deep") or kTooLarge
// ("document_too_large").
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"
#include "knowledge/extract/document.hpp"

namespace parley::knowledge {

struct DetectedType {
  Format format = Format::kText;
  std::string language;  // for source code
  std::string mime;      // the format's MIME type ("application/pdf", "text/markdown")
  bool sniffed = false;  // decided from the content alone (the name had no known extension)
};

Result<DetectedType> detect_type(std::string_view bytes, std::string_view name);

Result<Extracted> extract(std::string_view bytes, std::string_view name,
                          const ExtractLimits& limits = {});

// The MIME type Parley reports for a format ("text/markdown", "application/pdf").
std::string_view format_mime(Format format);

}  // namespace parley::knowledge
