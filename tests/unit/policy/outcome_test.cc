#include "policy/outcome.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace hookguard::policy {
namespace {

Outcome nth(std::size_t i) { return static_cast<Outcome>(i); }

// Verifies the table covers every enumerator, in order, with a unique stable name.
TEST(Outcome, EveryEnumeratorHasAUniqueNameThatRoundTrips) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kOutcomeCount; ++i) {
    const auto& info = outcome_info(nth(i));
    EXPECT_EQ(info.outcome, nth(i));
    EXPECT_FALSE(info.name.empty());
    EXPECT_FALSE(info.message.empty());
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    EXPECT_EQ(outcome_name(nth(i)), info.name);
    ASSERT_TRUE(outcome_from_name(info.name).has_value()) << info.name;
    EXPECT_EQ(*outcome_from_name(info.name), nth(i));
  }
  EXPECT_EQ(names.size(), kOutcomeCount);
}

TEST(Outcome, NamesAreSnakeCase) {
  for (std::size_t i = 0; i < kOutcomeCount; ++i) {
    for (char c : outcome_name(nth(i))) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << outcome_name(nth(i));
    }
  }
}

TEST(Outcome, MapsEveryOutcomeToTheDesignedStatusAndName) {
  struct Row {
    Outcome outcome;
    std::string_view name;
    int status;
  };
  const Row rows[] = {
      {Outcome::kForwarded, "forwarded", 0},
      {Outcome::kNotFound, "not_found", 404},
      {Outcome::kMethodNotAllowed, "method_not_allowed", 405},
      {Outcome::kPayloadTooLarge, "payload_too_large", 413},
      {Outcome::kIpDenied, "ip_denied", 403},
      {Outcome::kRateLimited, "rate_limited", 429},
      {Outcome::kRateLimitStoreError, "rate_limit_store_error", 503},
      {Outcome::kSignatureMissing, "signature_missing", 401},
      {Outcome::kSignatureInvalid, "signature_invalid", 401},
      {Outcome::kUpstreamError, "upstream_error", 502},
      {Outcome::kUpstreamTimeout, "upstream_timeout", 504},
      {Outcome::kUpstreamDenied, "upstream_denied", 502},
      {Outcome::kUpstreamBusy, "upstream_busy", 503},
      {Outcome::kBadRequest, "bad_request", 400},
      {Outcome::kDuplicate, "duplicate", 200},
      {Outcome::kFiltered, "filtered", 200},
      {Outcome::kChallenge, "challenge", 200},
      {Outcome::kDeliveryInFlight, "delivery_in_flight", 409},
      {Outcome::kShuttingDown, "shutting_down", 503},
  };
  ASSERT_EQ(std::size(rows), kOutcomeCount);
  for (const auto& row : rows) {
    EXPECT_EQ(outcome_info(row.outcome).name, row.name);
    EXPECT_EQ(outcome_info(row.outcome).http_status, row.status) << row.name;
  }
}

TEST(Outcome, SignatureMessagesDoNotSayWhichPartFailed) {
  EXPECT_EQ(outcome_info(Outcome::kSignatureInvalid).message.find("timestamp"),
            std::string_view::npos);
  EXPECT_EQ(outcome_info(Outcome::kNotFound).message.find("disabled"), std::string_view::npos);
}

TEST(Outcome, UnknownNameIsNullopt) {
  EXPECT_FALSE(outcome_from_name("nope").has_value());
  EXPECT_FALSE(outcome_from_name("").has_value());
  EXPECT_FALSE(outcome_from_name("Forwarded").has_value());
}

}  // namespace
}  // namespace hookguard::policy
