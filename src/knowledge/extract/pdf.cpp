// PDF through poppler (the library behind most Linux PDF viewers): the text of each page in
// reading order, cut into paragraphs at blank lines, each block tagged with its page so a
// citation can say "page 12". A PDF that needs a password, that poppler cannot read, or that
// holds no text at all (scanned pages need OCR first) is refused with a reason a person
// understands. Poppler's own diagnostics are silenced: a damaged file is the uploader's
// problem, not a log line per broken object.
#include <memory>
#include <mutex>

#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include "knowledge/extract/builder.hpp"
#include "knowledge/extract/extractors.hpp"
#include "knowledge/extract/text_utils.hpp"

namespace parley::knowledge {

namespace {

void silence(const std::string&, void*) {}

std::string utf8_of(const poppler::ustring& text) {
  const poppler::byte_array bytes = text.to_utf8();
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

Result<Extracted> extract_pdf(std::string_view bytes, const ExtractLimits& limits) {
  static std::once_flag quiet;
  std::call_once(quiet, [] { poppler::set_debug_error_function(silence, nullptr); });

  if (bytes.size() > static_cast<size_t>(INT32_MAX)) {
    return Error{
        ErrorCode::kTooLarge, "the PDF is larger than 2 GiB", "document_too_large", {}, {}};
  }
  std::unique_ptr<poppler::document> pdf(
      poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
  if (!pdf) {
    return Error::invalid("the file is not a readable PDF (it is damaged or not a PDF at all)",
                          "invalid_document");
  }
  if (pdf->is_locked()) {
    return Error::invalid("the PDF is protected by a password; upload a copy without one",
                          "document_encrypted");
  }
  const int pages = pdf->pages();
  if (pages > limits.max_pages) {
    return Error{ErrorCode::kTooLarge,
                 "the PDF has " + std::to_string(pages) + " pages; at most " +
                     std::to_string(limits.max_pages) + " are read",
                 "document_too_large",
                 {},
                 {}};
  }
  DocumentBuilder builder(Format::kPdf, limits);
  builder.set_pages(pages);
  builder.set_title(utf8_of(pdf->get_title()));
  for (int index = 0; index < pages && !builder.failed(); ++index) {
    std::unique_ptr<poppler::page> page(pdf->create_page(index));
    if (!page) continue;
    builder.set_page(index + 1);
    const std::string text = repair_utf8(
        utf8_of(page->text(poppler::rectf(), poppler::page::non_raw_non_physical_layout)));
    for (const std::string_view paragraph : split_paragraphs(text)) {
      builder.add(BlockKind::kParagraph, paragraph);
    }
  }
  if (!builder.failed() && builder.text_size() == 0) {
    return Error::invalid("the PDF has no text in its " + std::to_string(pages) +
                              " pages (scanned pages are images: they need OCR first)",
                          "document_empty");
  }
  return std::move(builder).finish();
}

}  // namespace parley::knowledge
