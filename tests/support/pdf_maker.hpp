// Writes small, valid PDFs for tests: one page per string, each line of it a line of text in
// Helvetica. Enough structure for poppler to read (catalog, page tree, fonts, content streams,
// an exact cross-reference table), so tests can make a PDF of any page count without
// fixture files.
#pragma once

#include <string>
#include <vector>

namespace parley::testing {

std::string make_pdf(const std::vector<std::string>& pages, const std::string& title = "");

}  // namespace parley::testing
