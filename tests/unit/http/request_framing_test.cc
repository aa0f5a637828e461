#include "http/request_framing.h"

#include <gtest/gtest.h>

#include <string>

namespace hookguard::http {
namespace {

const std::string kHead = "POST /w HTTP/1.1\r\nHost: a\r\n\r\n";

std::optional<std::size_t> length_of(const std::string& wire, BodyFraming framing) {
  return request_length(wire, wire.size(), framing);
}

TEST(RequestLength, HeadThenContentLengthBytesAndNothingOfWhatFollows) {
  const std::string next = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_EQ(length_of(kHead + "{}" + next, {false, 2}), kHead.size() + 2);
  EXPECT_EQ(length_of(kHead + next, {}), kHead.size());
  EXPECT_EQ(length_of(kHead + "{}", {false, 2}), kHead.size() + 2);
}

TEST(RequestLength, UnknownUntilTheHeadAndTheBodyAreAllThere) {
  EXPECT_EQ(length_of("POST /w HTTP/1.1\r\nHost: a\r\n", {}), std::nullopt);
  EXPECT_EQ(length_of(kHead + "{", {false, 2}), std::nullopt);
  // Bare line feeds do not end the head: Pistache ends lines at CRLF only.
  EXPECT_EQ(length_of("POST /w HTTP/1.1\nHost: a\n\n{}", {false, 2}), std::nullopt);
}

// A long Content-Length request needs only its head among the recorded bytes: the rest is
// counted by `total`.
TEST(RequestLength, AContentLengthRequestNeedsOnlyItsHeadRecorded) {
  EXPECT_EQ(request_length(kHead + "abc", kHead.size() + 100000, {false, 99990}),
            kHead.size() + 99990);
  EXPECT_EQ(request_length(kHead, kHead.size() + 10, {false, 20}), std::nullopt);
  EXPECT_EQ(request_length(kHead + "abc", 2, {false, 0}), std::nullopt) << "total below wire";
}

TEST(RequestLength, ChunkedBodyThroughTheLastChunkAndTheTrailerSection) {
  const std::string body = "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n";
  EXPECT_EQ(length_of(kHead + body + "GET /", {true, 0}), kHead.size() + body.size());
  const std::string trailers = "5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n";
  EXPECT_EQ(length_of(kHead + trailers + "next", {true, 0}), kHead.size() + trailers.size());
  EXPECT_EQ(length_of(kHead + "0\r\n\r\n", {true, 0}), kHead.size() + 5);
}

TEST(RequestLength, ChunkedBodiesItCannotReadAreUnknown) {
  EXPECT_EQ(length_of(kHead + "3\r\nabc\r\n0\r\n", {true, 0}), std::nullopt) << "no final CRLF";
  EXPECT_EQ(length_of(kHead + "3\r\nab", {true, 0}), std::nullopt) << "short chunk";
  EXPECT_EQ(length_of(kHead + "3\r\nabcd\r\n0\r\n\r\n", {true, 0}), std::nullopt)
      << "data longer than its size";
  EXPECT_EQ(length_of(kHead + "3;x=y\r\nabc\r\n0\r\n\r\n", {true, 0}), std::nullopt) << "extension";
  EXPECT_EQ(length_of(kHead + "+3\r\nabc\r\n0\r\n\r\n", {true, 0}), std::nullopt) << "sign";
  EXPECT_EQ(length_of(kHead + "\r\nabc\r\n0\r\n\r\n", {true, 0}), std::nullopt) << "no size";
  EXPECT_EQ(length_of(kHead + "1000000000000000\r\n", {true, 0}), std::nullopt) << "16 digits";
  // A chunked request must be recorded whole.
  const std::string whole = kHead + "0\r\n\r\n";
  EXPECT_EQ(request_length(whole, whole.size() + 1, {true, 0}), std::nullopt);
}

}  // namespace
}  // namespace hookguard::http
