// Tests http/named_header.h.
#include "http/named_header.h"

#include <gtest/gtest.h>
#include <pistache/http_headers.h>

#include <memory>
#include <sstream>

namespace hookguard::http {
namespace {

namespace Header = Pistache::Http::Header;

TEST(NamedHeader, CarriesItsNameAndValue) {
  NamedHeader header("X-Hookguard-Trigger", "github-main");
  EXPECT_STREQ(header.name(), "X-Hookguard-Trigger");
  std::ostringstream out;
  header.write(out);
  EXPECT_EQ(out.str(), "github-main");
  header.parse("other");
  out.str("");
  header.write(out);
  EXPECT_EQ(out.str(), "other");
}

// Pistache's checked casts compare hashes: one named like a built-in header must not match it.
TEST(NamedHeader, HashesUnlikeTheBuiltInHeaderOfTheSameName) {
  EXPECT_NE(NamedHeader("Content-Length", "12").hash(), Header::ContentLength::Hash);
  EXPECT_NE(NamedHeader("Cache-Control", "no-store").hash(), Header::CacheControl::Hash);
  EXPECT_EQ(NamedHeader("X-A", "1").hash(), NamedHeader("X-A", "2").hash());
  EXPECT_NE(NamedHeader("X-A", "1").hash(), NamedHeader("X-B", "1").hash());
}

TEST(NamedHeader, IsListedByACollectionUnderItsName) {
  Header::Collection headers;
  headers.add(std::make_shared<NamedHeader>("RateLimit-Remaining", "7"));
  ASSERT_EQ(headers.list().size(), 1u);
  EXPECT_STREQ(headers.list().front()->name(), "RateLimit-Remaining");
  std::ostringstream out;
  headers.list().front()->write(out);
  EXPECT_EQ(out.str(), "7");
}

}  // namespace
}  // namespace hookguard::http
