// Assembles an Extracted document block by block, for every extractor: joins the blocks'
// text, keeps the heading path each block sits under, and enforces ExtractLimits (the first
// limit reached is kept as the error; later blocks are ignored).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/result.hpp"
#include "knowledge/extract/document.hpp"

namespace parley::knowledge {

class DocumentBuilder {
 public:
  DocumentBuilder(Format format, const ExtractLimits& limits);

  // Appends a block; blank text is skipped. False once a limit is reached.
  bool add(BlockKind kind, std::string_view text);
  // A heading of `level` (1 = top): it closes every open heading of the same or a deeper
  // level, and the blocks after it sit under it. The first level-1 heading is the title
  // unless one was set.
  bool heading(int level, std::string_view text);
  void set_page(int page) { page_ = page; }
  void set_title(std::string_view title);
  void set_language(std::string language) { doc_.language = std::move(language); }
  void set_pages(int pages) { doc_.pages = pages; }
  // Stops the build with an error of the extractor's own (a parse error).
  void fail(Error error);
  bool failed() const { return error_.has_value(); }
  size_t text_size() const { return doc_.text.size(); }

  // The document, or the first limit or failure met.
  Result<Extracted> finish() &&;

 private:
  bool append(BlockKind kind, std::string_view text, int level);
  std::string section_path() const;

  Extracted doc_;
  ExtractLimits limits_;
  std::vector<std::pair<int, std::string>> headings_;  // open headings, outermost first
  int page_ = 0;
  bool title_set_ = false;
  std::optional<Error> error_;
};

}  // namespace parley::knowledge
