// Unit tests of gateway/http1_response_parser.cc: framing, limits and malformed input.
#include "gateway/http1_response_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace hookguard::gateway::http1 {
namespace {

using State = ResponseParser::State;
using Error = ResponseParser::Error;

constexpr std::int64_t kMaxBody = 1 << 20;

struct Parsed {
  ResponseParser parser;
  std::size_t used = 0;
};

// Feeds `wire` in one piece, then EOF when `eof`.
void parse(ResponseParser& p, std::string_view wire, bool head = false, bool eof = false,
           std::int64_t max_body = kMaxBody, std::size_t* used = nullptr) {
  p.reset(head, max_body);
  const std::size_t n = p.feed(wire);
  if (used != nullptr) *used = n;
  if (eof) p.feed_eof();
}

constexpr std::string_view kChunked =
    "HTTP/1.1 200 OK\r\n"
    "Transfer-Encoding: chunked\r\n"
    "X-A: 1\r\n"
    "\r\n"
    "5;name=value\r\nhello\r\n"
    "6 ; ext\r\n world\r\n"
    "0\r\n"
    "X-Trailer: t\r\n"
    "\r\n";

TEST(Http1ResponseParser, ContentLengthBody) {
  ResponseParser p;
  parse(p, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}");
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(p.status(), 201);
  EXPECT_EQ(p.body(), "{}");
  EXPECT_EQ(p.headers().get("Content-Type"), "application/json");
  EXPECT_FALSE(p.headers().get("Content-Length"));
  EXPECT_TRUE(p.keep_alive());
}

TEST(Http1ResponseParser, EveryByteBoundarySplitGivesTheSameResult) {
  for (std::string_view wire :
       {kChunked, std::string_view("HTTP/1.1 100 Continue\r\nX-I: 1\r\n\r\n"
                                   "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-F: 2\r\n\r\nabc")}) {
    for (std::size_t split = 0; split <= wire.size(); ++split) {
      ResponseParser p;
      p.reset(false, kMaxBody);
      std::size_t used = p.feed(wire.substr(0, split));
      used += p.feed(wire.substr(split));
      ASSERT_EQ(p.state(), State::kDone) << "split at " << split << ": " << p.error_message();
      EXPECT_EQ(used, wire.size());
      EXPECT_EQ(p.status(), 200);
      EXPECT_TRUE(p.body() == "hello world" || p.body() == "abc") << p.body();
      EXPECT_FALSE(p.headers().get("X-Trailer"));
      EXPECT_FALSE(p.headers().get("X-I"));
    }
  }
}

TEST(Http1ResponseParser, ByteByByte) {
  ResponseParser p;
  p.reset(false, kMaxBody);
  for (char c : kChunked) p.feed(std::string_view(&c, 1));
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(p.body(), "hello world");
  EXPECT_EQ(p.headers().get("X-A"), "1");
  EXPECT_FALSE(p.headers().get("Transfer-Encoding"));
}

TEST(Http1ResponseParser, BytesAfterTheResponseAreLeftUnconsumed) {
  ResponseParser p;
  std::size_t used = 0;
  const std::string_view wire = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1";
  parse(p, wire, false, false, kMaxBody, &used);
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(used, wire.size() - 8);
}

TEST(Http1ResponseParser, BadChunkSizesAreMalformed) {
  for (std::string_view chunk : {"zz\r\n", "\r\n", "-1\r\n", "5 x\r\n", "0x5\r\n",
                                 "1000000000000000\r\n",   // 16 hex digits: would overflow
                                 "5\r\nhelloXX0\r\n\r\n",  // missing CRLF after the data
                                 "5\r\nhello\r0\r\n\r\n"}) {
    ResponseParser p;
    parse(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(chunk));
    EXPECT_EQ(p.state(), State::kError) << chunk;
    EXPECT_EQ(p.error(), Error::kMalformedBody) << chunk;
  }
}

TEST(Http1ResponseParser, ChunkSizeLineIsBounded) {
  ResponseParser p;
  parse(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;" +
               std::string(kMaxChunkSizeLine, 'a'));
  EXPECT_EQ(p.state(), State::kError);
  EXPECT_EQ(p.error(), Error::kMalformedBody);
}

TEST(Http1ResponseParser, ChunkOverTheBodyLimitFailsBeforeItsData) {
  ResponseParser p;
  parse(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\n", false, false,
        5);
  EXPECT_EQ(p.state(), State::kError);
  EXPECT_EQ(p.error(), Error::kBodyTooLarge);
  EXPECT_STREQ(p.error_message(), "upstream body too large");
}

TEST(Http1ResponseParser, ContentLengthOverTheLimitFailsAtTheHeaders) {
  ResponseParser p;
  parse(p, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n", false, false, 5);
  EXPECT_EQ(p.error(), Error::kBodyTooLarge);
  parse(p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde", false, false, 5);
  EXPECT_EQ(p.state(), State::kDone);
}

TEST(Http1ResponseParser, BodyUntilCloseIsBoundedAndNotKeptAlive) {
  ResponseParser p;
  parse(p, "HTTP/1.1 200 OK\r\n\r\nabc", false, /*eof=*/true);
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(p.body(), "abc");
  EXPECT_FALSE(p.keep_alive());
  parse(p, "HTTP/1.1 200 OK\r\n\r\nabcdef", false, false, 5);
  EXPECT_EQ(p.error(), Error::kBodyTooLarge);
}

TEST(Http1ResponseParser, EofBeforeTheEndIsIncomplete) {
  ResponseParser p;
  parse(p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", false, true);
  EXPECT_EQ(p.error(), Error::kIncomplete);
  parse(p, "HTTP/1.1 200 OK\r\nContent-", false, true);
  EXPECT_EQ(p.error(), Error::kIncomplete);
  parse(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false, true);
  EXPECT_EQ(p.error(), Error::kIncomplete);
}

TEST(Http1ResponseParser, ContentLengthDuplicatesMustAgree) {
  ResponseParser p;
  parse(p, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(p.state(), State::kDone);
  parse(p, "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc");
  EXPECT_EQ(p.state(), State::kDone);
  for (std::string_view cl :
       {"Content-Length: 3\r\nContent-Length: 4\r\n", "Content-Length: 3, 4\r\n",
        "Content-Length: -1\r\n", "Content-Length: 3x\r\n", "Content-Length: \r\n",
        "Content-Length: ,\r\n", "Content-Length: 1234567890123456789\r\n"}) {
    parse(p, "HTTP/1.1 200 OK\r\n" + std::string(cl) + "\r\nabc");
    EXPECT_EQ(p.error(), Error::kMalformedHeader) << cl;
    EXPECT_STREQ(p.error_message(), "malformed upstream header");
  }
}

TEST(Http1ResponseParser, TransferEncodingWithContentLengthIsMalformed) {
  ResponseParser p;
  parse(p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(p.error(), Error::kMalformedHeader);
  // Codings other than a single chunked cannot be framed.
  parse(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(p.error(), Error::kMalformedHeader);
  parse(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(p.error(), Error::kMalformedHeader);
  parse(p, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(p.error(), Error::kMalformedHeader);
}

TEST(Http1ResponseParser, InterimResponsesAreSkipped) {
  ResponseParser p;
  parse(p,
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        "HTTP/1.1 204 No Content\r\nX-F: 1\r\n\r\n");
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(p.status(), 204);
  EXPECT_FALSE(p.headers().get("Link"));
  EXPECT_EQ(p.headers().get("X-F"), "1");
  parse(p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n");
  EXPECT_EQ(p.error(), Error::kMalformedHeader);
}

TEST(Http1ResponseParser, HeadAnd204And304HaveNoBody) {
  ResponseParser p;
  std::size_t used = 0;
  const std::string_view head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
  parse(p, head, /*head=*/true, false, kMaxBody, &used);
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(used, head.size());
  EXPECT_TRUE(p.keep_alive());
  // Content-Length of a HEAD response may exceed the body limit: no body follows.
  parse(p, head, true, false, 10);
  EXPECT_EQ(p.state(), State::kDone);
  for (std::string_view wire :
       {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    parse(p, wire, false, false, kMaxBody, &used);
    EXPECT_EQ(p.state(), State::kDone) << wire;
    EXPECT_EQ(used, wire.size());
    EXPECT_TRUE(p.body().empty());
  }
}

TEST(Http1ResponseParser, HeaderBlockOverTheByteLimitIsTooLarge) {
  ResponseParser p;
  std::string wire = "HTTP/1.1 200 OK\r\n";
  wire += "X-Big: " + std::string(kMaxResponseHeaderBytes, 'a') + "\r\n\r\n";
  std::size_t used = 0;
  parse(p, wire, false, false, kMaxBody, &used);
  EXPECT_EQ(p.error(), Error::kHeadersTooLarge);
  EXPECT_LE(used, kMaxResponseHeaderBytes);  // never buffered past the limit
  EXPECT_STREQ(p.error_message(), "upstream headers too large");
}

TEST(Http1ResponseParser, HeaderFieldCountIsLimited) {
  auto with_fields = [](int n) {
    std::string wire = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < n; ++i) wire += "X-" + std::to_string(i) + ": v\r\n";
    return wire + "Content-Length: 0\r\n\r\n";
  };
  ResponseParser p;
  parse(p, with_fields(kMaxResponseHeaderFields - 1));
  EXPECT_EQ(p.state(), State::kDone);
  parse(p, with_fields(kMaxResponseHeaderFields));
  EXPECT_EQ(p.error(), Error::kHeadersTooLarge);
  EXPECT_TRUE(p.headers().empty());
}

TEST(Http1ResponseParser, MalformedHeaderLines) {
  using namespace std::string_view_literals;
  for (std::string_view line : {"X-A: 1\r\n folded\r\n"sv, "NoColon\r\n"sv, "Bad Name: v\r\n"sv,
                                ": v\r\n"sv, "X-A: a\rb\r\n"sv, "X-A: a\0b\r\n"sv}) {
    ResponseParser p;
    parse(p, "HTTP/1.1 200 OK\r\n" + std::string(line) + "Content-Length: 0\r\n\r\n");
    EXPECT_EQ(p.error(), Error::kMalformedHeader) << line;
  }
}

TEST(Http1ResponseParser, MalformedStatusLines) {
  for (std::string_view line :
       {"HTTP/2 200 OK", "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 099 X", "http/1.1 200 OK",
        "HTTP/1.1  200 OK", "HTTP/1.1 200OK", "ICY 200 OK"}) {
    ResponseParser p;
    parse(p, std::string(line) + "\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(p.error(), Error::kMalformedHeader) << line;
  }
  ResponseParser p;
  parse(p, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");  // the reason phrase may be absent
  EXPECT_EQ(p.state(), State::kDone);
}

TEST(Http1ResponseParser, HopByHopAndConnectionNamedFieldsAreRemoved) {
  ResponseParser p;
  parse(p,
        "HTTP/1.1 200 OK\r\nConnection: X-Private, close\r\nX-Private: 1\r\nKeep-Alive: t=5\r\n"
        "Proxy-Authenticate: x\r\nUpgrade: h2c\r\nTrailer: X-T\r\nX-Kept: 1\r\n"
        "Content-Length: 0\r\n\r\n");
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(p.headers().size(), 1u);
  EXPECT_EQ(p.headers().get("X-Kept"), "1");
  EXPECT_FALSE(p.keep_alive());
}

TEST(Http1ResponseParser, Http10IsNeverKeptAlive) {
  ResponseParser p;
  parse(p, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx");
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_FALSE(p.keep_alive());
}

TEST(Http1ResponseParser, LineEndingsMayBeBareLf) {
  ResponseParser p;
  parse(p, "HTTP/1.1 200 OK\nContent-Length: 2\n\nok");
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(p.body(), "ok");
}

}  // namespace
}  // namespace hookguard::gateway::http1
