// The web chat's serving (channels/web/routes.hpp): what is embedded, content negotiation,
// validators, caching and the page's security policy.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>

#include "channels/web/assets.hpp"
#include "channels/web/routes.hpp"

namespace {

using parley::channels::web::accepts_gzip;
using parley::channels::web::Asset;
using parley::channels::web::asset_response;
using parley::channels::web::embedded_assets;
using parley::channels::web::etag_matches;

std::string header(const parley::http::Response& res, std::string_view name) {
  for (const auto& [n, v] : res.headers) {
    if (parley::http::iequals(n, name)) return v;
  }
  return "";
}

parley::http::Request request(std::vector<std::pair<std::string_view, std::string_view>> headers) {
  parley::http::Request req;
  req.headers = std::move(headers);
  return req;
}

TEST(WebAssets, ThePageAndEveryFileItNamesAreEmbedded) {
  std::set<std::string_view> paths;
  const Asset* page = nullptr;
  for (const auto& a : embedded_assets()) {
    paths.insert(a.path);
    if (a.path == "/") page = &a;
    EXPECT_FALSE(a.body.empty()) << a.path;
    EXPECT_EQ(a.etag.front(), '"') << a.path;
    EXPECT_EQ(a.immutable, a.path != "/") << a.path;
    if (!a.gzip.empty()) {
      EXPECT_LT(a.gzip.size(), a.body.size()) << a.path;
      EXPECT_EQ(static_cast<unsigned char>(a.gzip[0]), 0x1f) << a.path;  // gzip's magic
    }
  }
  ASSERT_NE(page, nullptr);
  EXPECT_TRUE(page->content_type.starts_with("text/html"));
  // Every /assets/ reference of the page is a file the binary holds.
  std::string_view html = page->body;
  int references = 0;
  for (size_t at = html.find("\"/assets/"); at != std::string_view::npos;
       at = html.find("\"/assets/", at + 1)) {
    const size_t end = html.find('"', at + 1);
    EXPECT_TRUE(paths.count(html.substr(at + 1, end - at - 1)))
        << html.substr(at + 1, end - at - 1);
    ++references;
  }
  EXPECT_GE(references, 3);  // script, styles, icon
  EXPECT_EQ(html.find("<script>"), std::string_view::npos) << "no inline script";
}

TEST(WebAssets, GzipIsAcceptedByNameOrWildcardUnlessItsQualityIsZero) {
  EXPECT_TRUE(accepts_gzip("gzip"));
  EXPECT_TRUE(accepts_gzip("gzip, deflate, br"));
  EXPECT_TRUE(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
  EXPECT_TRUE(accepts_gzip("*"));
  EXPECT_TRUE(accepts_gzip("x-gzip"));
  EXPECT_FALSE(accepts_gzip(""));
  EXPECT_FALSE(accepts_gzip("identity"));
  EXPECT_FALSE(accepts_gzip("br, deflate"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0.000, *"));
  EXPECT_FALSE(accepts_gzip("*;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=nonsense"));
  EXPECT_FALSE(accepts_gzip("gzip;q=2"));
}

TEST(WebAssets, IfNoneMatchComparesWeaklyAndAcceptsLists) {
  EXPECT_TRUE(etag_matches(R"("abc")", R"("abc")"));
  EXPECT_TRUE(etag_matches(R"(W/"abc")", R"("abc")"));
  EXPECT_TRUE(etag_matches(R"("x", "abc")", R"("abc")"));
  EXPECT_TRUE(etag_matches("*", R"("abc")"));
  EXPECT_FALSE(etag_matches(R"("abcd")", R"("abc")"));
  EXPECT_FALSE(etag_matches("abc", R"("abc")"));
  EXPECT_FALSE(etag_matches("", R"("abc")"));
}

TEST(WebAssets, AnswersNegotiateEncodingAndValidateWithTheEtag) {
  const Asset page{"/",  "text/html; charset=utf-8", "<html>plain</html>", "GZIPPED", "\"v1\"",
                   false};
  auto plain = asset_response(page, request({}));
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.body, "<html>plain</html>");
  EXPECT_EQ(header(plain, "Content-Encoding"), "");
  EXPECT_EQ(header(plain, "Vary"), "Accept-Encoding");
  EXPECT_EQ(header(plain, "ETag"), "\"v1\"");
  EXPECT_EQ(header(plain, "Cache-Control"), "no-cache");
  const std::string policy = header(plain, "Content-Security-Policy");
  EXPECT_NE(policy.find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(policy.find("unsafe"), std::string::npos);

  auto zipped = asset_response(page, request({{"accept-encoding", "gzip, br"}}));
  EXPECT_EQ(zipped.body, "GZIPPED");
  EXPECT_EQ(header(zipped, "Content-Encoding"), "gzip");
  EXPECT_EQ(header(zipped, "ETag"), "\"v1-gz\"");  // another representation, another tag
  auto zipped_unchanged =
      asset_response(page, request({{"accept-encoding", "gzip"}, {"if-none-match", "\"v1-gz\""}}));
  EXPECT_EQ(zipped_unchanged.status, 304);
  // The plain body's tag does not validate the gzipped one.
  EXPECT_EQ(
      asset_response(page, request({{"accept-encoding", "gzip"}, {"if-none-match", "\"v1\""}}))
          .status,
      200);

  auto unchanged = asset_response(page, request({{"if-none-match", "\"v1\""}}));
  EXPECT_EQ(unchanged.status, 304);
  EXPECT_TRUE(unchanged.body.empty());
  EXPECT_EQ(header(unchanged, "ETag"), "\"v1\"");

  const Asset script{
      "/assets/app-X.js", "text/javascript; charset=utf-8", "js", "", "\"v2\"", true};
  auto cached = asset_response(script, request({{"accept-encoding", "gzip"}}));
  EXPECT_EQ(cached.body, "js");  // nothing smaller to send
  EXPECT_EQ(header(cached, "Content-Encoding"), "");
  EXPECT_EQ(header(cached, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(header(cached, "Content-Security-Policy"), "");
}

}  // namespace
