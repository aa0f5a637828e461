// Unit tests of the pure parts of db/audit_writer.cc: string sanitising and DSN defaults.
#include "db/audit_writer.h"

#include <gtest/gtest.h>

#include <string>

namespace hookguard::db {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(SanitizeUtf8, KeepsValidUtf8) {
  const std::string text = "plain ascii, caf\xC3\xA9, \xE2\x98\x83, \xF0\x9F\x98\x80";
  EXPECT_EQ(sanitize_utf8(text, 1024), text);
}

TEST(SanitizeUtf8, ReplacesInvalidBytesAndNul) {
  EXPECT_EQ(sanitize_utf8(std::string("a\xFF"
                                      "b",
                                      3),
                          64),
            "a" + kFffd + "b");
  EXPECT_EQ(sanitize_utf8(std::string("a\0b", 3), 64), "a" + kFffd + "b");
  // A lone continuation byte, and a lead byte cut off by the end of the string.
  EXPECT_EQ(sanitize_utf8("\x80", 64), kFffd);
  EXPECT_EQ(sanitize_utf8("x\xE2\x98", 64), "x" + kFffd + kFffd);
}

TEST(SanitizeUtf8, RejectsOverlongSurrogatesAndBeyondUnicode) {
  EXPECT_EQ(sanitize_utf8("\xC0\xAF", 64), kFffd + kFffd);              // overlong '/'
  EXPECT_EQ(sanitize_utf8("\xE0\x80\xAF", 64), kFffd + kFffd + kFffd);  // overlong '/'
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80", 64), kFffd + kFffd + kFffd);  // U+D800
  EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80", 64), kFffd + kFffd + kFffd + kFffd);
}

TEST(SanitizeUtf8, TruncatesAtACharacterBoundary) {
  EXPECT_EQ(sanitize_utf8("abcdef", 4), "abcd");
  // "a" + snowman (3 bytes) does not fit in 3 bytes: the snowman goes whole.
  EXPECT_EQ(sanitize_utf8("a\xE2\x98\x83", 3), "a");
  EXPECT_EQ(sanitize_utf8("a\xE2\x98\x83", 4), "a\xE2\x98\x83");
}

TEST(SanitizeAuditRow, CutsEachFieldToItsLimit) {
  AuditRow row;
  row.user_agent = std::string(600, 'u');
  row.delivery_id = std::string(300, 'd');
  row.event_type = std::string(300, 'e');
  row.error_message = std::string(2000, 'x');
  row.webhook_key = std::string(200, 'k');
  sanitize_audit_row(row);
  EXPECT_EQ(row.user_agent->size(), 512U);
  EXPECT_EQ(row.delivery_id->size(), 256U);
  EXPECT_EQ(row.event_type->size(), 256U);
  EXPECT_EQ(row.error_message->size(), 1024U);
  EXPECT_EQ(row.webhook_key.size(), 128U);
}

// Plain ASCII within its bound stays as it is; a NUL, a byte above 0x7F or an invalid sequence
// anywhere sends the field through the full check.
TEST(SanitizeAuditRow, KeepsPlainFieldsAndRepairsTheRest) {
  AuditRow row;
  row.webhook_key = std::string(128, 'k');  // exactly at its limit
  row.method = std::string("PO\0ST", 5);
  row.outcome = "forwarded";
  row.user_agent = "curl/8.0 \xFF";
  row.delivery_id = "caf\xC3\xA9";  // valid UTF-8, not ASCII
  row.error_message = std::string("a\0", 2);
  sanitize_audit_row(row);
  EXPECT_EQ(row.webhook_key, std::string(128, 'k'));
  EXPECT_EQ(row.method, "PO" + kFffd + "ST");
  EXPECT_EQ(row.outcome, "forwarded");
  EXPECT_EQ(row.user_agent, "curl/8.0 " + kFffd);
  EXPECT_EQ(row.delivery_id, "caf\xC3\xA9");
  EXPECT_EQ(row.error_message, "a" + kFffd);
}

TEST(AuditDsn, AddsTimeoutsToAUriWithoutQuery) {
  EXPECT_EQ(audit_dsn_with_defaults("postgresql://u@127.0.0.1:5432/db"),
            "postgresql://u@127.0.0.1:5432/db?connect_timeout=2&keepalives=1&keepalives_idle=5"
            "&keepalives_interval=2&keepalives_count=2&tcp_user_timeout=5000"
            "&client_encoding=UTF8&application_name=hookguard-audit");
}

TEST(AuditDsn, ExtendsAnExistingQueryAndKeepsTheCallersValues) {
  std::string dsn = audit_dsn_with_defaults(
      "postgres://u@h/db?sslmode=disable&connect_timeout=9&application_name=mine");
  EXPECT_EQ(dsn.rfind("postgres://u@h/db?sslmode=disable&connect_timeout=9&application_name=mine&"
                      "keepalives=1",
                      0),
            0U)
      << dsn;
  EXPECT_EQ(dsn.find("connect_timeout=2"), std::string::npos);
  EXPECT_EQ(dsn.find("hookguard-audit"), std::string::npos);
}

TEST(AuditDsn, AppendsKeywordsToAKeyValueDsn) {
  std::string dsn = audit_dsn_with_defaults("host=127.0.0.1 dbname=x tcp_user_timeout=100");
  EXPECT_EQ(dsn.rfind("host=127.0.0.1 dbname=x tcp_user_timeout=100 connect_timeout=2 ", 0), 0U)
      << dsn;
  EXPECT_EQ(dsn.find("tcp_user_timeout=5000"), std::string::npos);
}

}  // namespace
}  // namespace hookguard::db
