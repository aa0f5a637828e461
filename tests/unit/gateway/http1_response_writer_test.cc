// Unit tests of gateway/http1_response_writer.cc: what the gateway puts on the client's wire.
#include "gateway/http1_response_writer.h"

#include <gtest/gtest.h>

#include <string>

#include "gateway/http1_response_parser.h"

namespace hookguard::gateway::http1 {
namespace {

// Parses `wire` back with the upstream parser: one complete response, every byte used.
ResponseParser parse_back(const std::string& wire) {
  ResponseParser p;
  p.reset(false, 1 << 20);
  EXPECT_EQ(p.feed(wire), wire.size()) << wire;
  EXPECT_EQ(p.state(), ResponseParser::State::kDone) << wire;
  return p;
}

TEST(Http1ResponseWriter, WritesStatusFieldsFramingAndBody) {
  policy::HeaderList h{{"Content-Type", "application/json"}, {"X-Request-Id", "r-1"}};
  const std::string wire = write_response({}, 201, h, "{\"a\":1}");
  EXPECT_EQ(wire,
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Request-Id: r-1\r\n"
            "Connection: keep-alive\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
  auto p = parse_back(wire);
  EXPECT_EQ(p.status(), 201);
  EXPECT_EQ(p.headers().get("X-Request-Id"), "r-1");
  EXPECT_EQ(p.body(), "{\"a\":1}");
  EXPECT_TRUE(p.keep_alive());
}

TEST(Http1ResponseWriter, AnswersHttp10InKindAndSaysCloseWhenClosing) {
  const std::string wire = write_response({.http10 = true, .close = true}, 401, {}, "no");
  EXPECT_EQ(wire, "HTTP/1.0 401 Unauthorized\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno");
  EXPECT_FALSE(parse_back(write_response({.close = true}, 200, {}, "")).keep_alive());
}

TEST(Http1ResponseWriter, AStatusWithoutAPhraseKeepsTheSpaceAndABadStatusBecomes502) {
  EXPECT_EQ(write_response({}, 299, {}, "").rfind("HTTP/1.1 299 \r\n", 0), 0u);
  EXPECT_EQ(parse_back(write_response({}, 299, {}, "x")).status(), 299);
  for (int bad : {-1, 0, 99, 600, 1000}) {
    EXPECT_EQ(write_response({}, bad, {}, "").rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u) << bad;
  }
}

TEST(Http1ResponseWriter, FieldsThatCouldSplitOrReframeTheResponseAreDropped) {
  policy::HeaderList h{{"X-Ok", "1"},
                       {"X-Bad\r\nInjected", "1"},
                       {"X Space", "1"},
                       {"", "empty name"},
                       {"X-Crlf", "a\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK"},
                       {"X-Lf", "a\nb"},
                       {"X-Nul", std::string("a\0b", 3)},
                       {"Content-Length", "999"},
                       {"transfer-encoding", "chunked"},
                       {"CONNECTION", "close"}};
  const std::string wire = write_response({}, 200, h, "body");
  EXPECT_EQ(
      wire,
      "HTTP/1.1 200 OK\r\nX-Ok: 1\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nbody");
  EXPECT_EQ(parse_back(wire).body(), "body");
}

TEST(Http1ResponseWriter, NoContentAndNotModifiedCarryNeitherLengthNorBody) {
  for (int status : {204, 304}) {
    const std::string wire = write_response({}, status, {}, "ignored");
    EXPECT_EQ(wire, "HTTP/1.1 " + std::to_string(status) + " " +
                        std::string(reason_phrase(status)) + "\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_EQ(parse_back(wire).body(), "");
  }
}

TEST(Http1ResponseWriter, AnswerToHeadHasTheLengthButNoBody) {
  const std::string wire = write_response({.head = true}, 405, {}, "{\"error\":\"x\"}");
  EXPECT_EQ(wire,
            "HTTP/1.1 405 Method Not Allowed\r\nConnection: keep-alive\r\n"
            "Content-Length: 13\r\n\r\n");
  ResponseParser p;
  p.reset(true, 1 << 20);
  EXPECT_EQ(p.feed(wire), wire.size());
  EXPECT_EQ(p.state(), ResponseParser::State::kDone);
}

TEST(Http1ResponseWriter, ReasonPhrasesOfTheGatewaysOwnAnswers) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(403), "Forbidden");
  EXPECT_EQ(reason_phrase(404), "Not Found");
  EXPECT_EQ(reason_phrase(405), "Method Not Allowed");
  EXPECT_EQ(reason_phrase(409), "Conflict");
  EXPECT_EQ(reason_phrase(413), "Content Too Large");
  EXPECT_EQ(reason_phrase(429), "Too Many Requests");
  EXPECT_EQ(reason_phrase(502), "Bad Gateway");
  EXPECT_EQ(reason_phrase(503), "Service Unavailable");
  EXPECT_EQ(reason_phrase(504), "Gateway Timeout");
  EXPECT_EQ(reason_phrase(599), "");
}

TEST(Http1ResponseWriter, ALargeBodyIsCopiedWhole) {
  const std::string body(3 << 20, 'b');
  const std::string wire = write_response({}, 200, {}, body);
  EXPECT_EQ(wire.size(), body.size() + std::string("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
                                                   "Content-Length: 3145728\r\n\r\n")
                                           .size());
  EXPECT_EQ(wire.compare(wire.size() - body.size(), body.size(), body), 0);
}

}  // namespace
}  // namespace hookguard::gateway::http1
