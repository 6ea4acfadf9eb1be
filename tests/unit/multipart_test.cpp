// multipart/form-data: what curl, browsers and the OpenAI SDK send for an upload, and the
// malformed bodies refused with a reason.
#include <gtest/gtest.h>

#include "http/multipart.hpp"

namespace parley::http {
namespace {

constexpr std::string_view kType = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk";

std::string body_of(std::string_view content) {
  std::string body = "preamble is ignored\r\n------WebKitFormBoundary7MA4YWxk\r\n";
  body += "Content-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n";
  body += "------WebKitFormBoundary7MA4YWxk\r\n";
  body += "Content-Disposition: form-data; name=\"file\"; filename=\"guide \\\"v2\\\".pdf\"\r\n";
  body += "Content-Type: application/pdf\r\n\r\n";
  body += content;
  body += "\r\n------WebKitFormBoundary7MA4YWxk--\r\nepilogue";
  return body;
}

TEST(Multipart, ReadsFieldsAndFilesAsViewsIntoTheBody) {
  const std::string binary("%PDF\r\n\x00\xff--not a boundary\r\n", 26);
  const std::string body = body_of(binary);
  auto parts = parse_multipart(kType, body);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2U);
  EXPECT_EQ((*parts)[0].name, "purpose");
  EXPECT_FALSE((*parts)[0].filename.has_value());
  EXPECT_EQ((*parts)[0].data, "assistants");
  const FormPart* file = find_part(*parts, "file");
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->filename, "guide \"v2\".pdf");
  EXPECT_EQ(file->content_type, "application/pdf");
  EXPECT_EQ(file->data, binary);
  EXPECT_GE(file->data.data(), body.data());
  EXPECT_EQ(find_part(*parts, "missing"), nullptr);
}

TEST(Multipart, QuotedBoundaryAndCaseInsensitiveNames) {
  const std::string body = "--b\r\ncontent-disposition: FORM-DATA; NAME=x\r\n\r\n1\r\n--b--";
  auto parts = parse_multipart("Multipart/Form-Data; charset=utf-8; boundary=\"b\"", body);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 1U);
  EXPECT_EQ((*parts)[0].name, "x");
  EXPECT_EQ((*parts)[0].data, "1");
}

TEST(Multipart, MalformedBodiesSayWhatIsWrong) {
  const auto reason = [](std::string_view type, std::string_view body) {
    auto parts = parse_multipart(type, body);
    return parts.ok() ? std::string("ok") : parts.error().message;
  };
  EXPECT_NE(reason("application/json", "{}").find("not multipart"), std::string::npos);
  EXPECT_NE(reason("multipart/form-data", "x").find("no valid boundary"), std::string::npos);
  EXPECT_NE(reason(kType, "no delimiter here").find("never appears"), std::string::npos);
  EXPECT_NE(reason("multipart/form-data; boundary=b",
                   "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nunfinished")
                .find("ends inside a part"),
            std::string::npos);
  EXPECT_NE(reason("multipart/form-data; boundary=b", "--b\r\nX-Other: 1\r\n\r\nv\r\n--b--")
                .find("no Content-Disposition"),
            std::string::npos);
  std::string many;
  for (int i = 0; i < 65; ++i) many += "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n";
  many += "--b--";
  EXPECT_NE(reason("multipart/form-data; boundary=b", many).find("more than 64 parts"),
            std::string::npos);
}

}  // namespace
}  // namespace parley::http
