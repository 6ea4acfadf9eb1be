// make_pdf (see pdf_maker.hpp).
#include "support/pdf_maker.hpp"

#include <cstdio>
#include <sstream>

namespace parley::testing {

namespace {

std::string pdf_string(const std::string& text) {
  std::string out = "(";
  for (char c : text) {
    if (c == '(' || c == ')' || c == '\\') out += '\\';
    out += c;
  }
  return out + ")";
}

std::string content_stream(const std::string& page) {
  std::ostringstream s;
  s << "BT /F1 12 Tf 72 720 Td 14 TL\n";
  size_t start = 0;
  while (start <= page.size()) {
    size_t end = page.find('\n', start);
    if (end == std::string::npos) end = page.size();
    const std::string line = page.substr(start, end - start);
    if (line.empty()) {
      s << "T*\n";  // a blank line: move down without text
    } else {
      s << pdf_string(line) << " Tj T*\n";
    }
    start = end + 1;
  }
  s << "ET\n";
  return s.str();
}

}  // namespace

std::string make_pdf(const std::vector<std::string>& pages, const std::string& title) {
  std::vector<std::string> objects;  // object i+1
  const size_t n = pages.size();
  // 1 catalog, 2 page tree, 3 font, 4 info, then per page: page object, content stream.
  objects.push_back("<< /Type /Catalog /Pages 2 0 R >>");
  std::string kids;
  for (size_t i = 0; i < n; ++i) kids += std::to_string(5 + 2 * i) + " 0 R ";
  objects.push_back("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(n) + " >>");
  objects.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  objects.push_back("<< /Title " + pdf_string(title) + " >>");
  for (size_t i = 0; i < n; ++i) {
    objects.push_back(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> "
        ">> /Contents " +
        std::to_string(6 + 2 * i) + " 0 R >>");
    const std::string stream = content_stream(pages[i]);
    objects.push_back("<< /Length " + std::to_string(stream.size()) + " >>\nstream\n" + stream +
                      "endstream");
  }
  std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(out.size());
    out += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  const size_t xref = out.size();
  out += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  for (size_t offset : offsets) {
    char line[24];
    std::snprintf(line, sizeof line, "%010zu 00000 n \n", offset);
    out += line;
  }
  out += "trailer\n<< /Size " + std::to_string(objects.size() + 1) +
         " /Root 1 0 R /Info 4 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
  return out;
}

}  // namespace parley::testing
