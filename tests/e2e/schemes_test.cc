// End-to-end: every signature scheme, replay protection, event filters and handshakes through
// the real hookguard binary, with real PostgreSQL, Redis and upstream (DESIGN §4).
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "policy/encoding.h"
#include "policy/signature.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/http_client.h"
#include "tests/support/test_env.h"
#include "tests/support/upstream_server.h"

namespace hookguard::testing {
namespace {

using policy::HeaderList;
using policy::HmacAlgorithm;
using policy::SignatureScheme;

constexpr const char* kSecret = "e2e-scheme-secret-0123456789";
// standard-webhooks keys are base64 ("whsec_" + base64 of 24 bytes).
constexpr const char* kWhsecSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u";
constexpr const char* kWrongSecret = "e2e-wrong-secret-0123456789";
constexpr const char* kWrongWhsecSecret = "whsec_OTg3NjU0MzIxMGZlZGNiYWhnZmVkY2Jh";

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `hookguard sign` prints one "Name: value" line per header.
HeaderList parse_header_lines(const std::string& text) {
  HeaderList headers;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    headers.add(line.substr(0, colon), line.substr(colon + 2));
  }
  return headers;
}

HeaderList cli_sign(const std::string& scheme, const std::string& secret, const std::string& body,
                    std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"sign", "--scheme", scheme, "--secret", secret};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto [code, out] = run_hookguard(args, body);
  EXPECT_EQ(code, 0) << out;
  return parse_header_lines(out);
}

// The same signatures built from the HMAC primitives alone, as each provider documents them.
HeaderList independent_sign(SignatureScheme scheme, const std::string& secret,
                            const std::string& body, std::int64_t ts,
                            const std::string& id = "msg_independent") {
  using policy::hmac_hex;
  using policy::hmac_raw;
  using policy::to_base64;
  const std::string t = std::to_string(ts);
  switch (scheme) {
    case SignatureScheme::kGeneric:
      return {{"X-Webhook-Signature", "sha256=" + hmac_hex(HmacAlgorithm::kSha256, secret, body)}};
    case SignatureScheme::kGithub:
      return {{"X-Hub-Signature-256", "sha256=" + hmac_hex(HmacAlgorithm::kSha256, secret, body)}};
    case SignatureScheme::kStripe:
      return {{"Stripe-Signature",
               "t=" + t + ",v1=" + hmac_hex(HmacAlgorithm::kSha256, secret, t + "." + body)}};
    case SignatureScheme::kSlack:
      return {{"X-Slack-Request-Timestamp", t},
              {"X-Slack-Signature",
               "v0=" + hmac_hex(HmacAlgorithm::kSha256, secret, "v0:" + t + ":" + body)}};
    case SignatureScheme::kStandardWebhooks: {
      const auto key = policy::from_base64(std::string_view(secret).substr(6));
      return {
          {"webhook-id", id},
          {"webhook-timestamp", t},
          {"webhook-signature", "v1," + to_base64(hmac_raw(HmacAlgorithm::kSha256, key.value_or(""),
                                                           id + "." + t + "." + body))}};
    }
    case SignatureScheme::kShopify:
      return {{"X-Shopify-Hmac-Sha256", to_base64(hmac_raw(HmacAlgorithm::kSha256, secret, body))}};
  }
  return {};
}

class DeliveryE2E : public ::testing::Test {
 protected:
  void start_gateway() {
    gateway_ = std::make_unique<GatewayProcess>(db_.dsn());
    ASSERT_TRUE(gateway_->start()) << gateway_->log();
  }

  db::StoredTrigger add(policy::TriggerSpec spec, const std::string& secret = kSecret) {
    return insert_trigger(db_.dsn(), std::move(spec), secret);
  }

  policy::TriggerSpec signed_trigger(const std::string& name, SignatureScheme scheme,
                                     const std::string& path = "/in") {
    auto spec = basic_trigger(name, upstream_.url(path));
    spec.policy.hmac.enabled = true;
    spec.policy.hmac.scheme = scheme;
    return spec;
  }

  HttpResponse post(const std::string& key, const std::string& body, const HeaderList& headers) {
    return http_request("POST", gateway_->ingress_url("/webhooks/" + key), headers, body);
  }

  LogRow row_of(const HttpResponse& r) {
    auto id = r.headers.get("X-Request-Id");
    EXPECT_TRUE(id.has_value()) << "no X-Request-Id in the answer";
    if (!id) return {};
    auto row = wait_for_log_row(db_.dsn(), std::string(*id));
    EXPECT_TRUE(row.has_value()) << "no log row for " << *id;
    return row.value_or(LogRow{});
  }

  static std::string error_of(const HttpResponse& r) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_object() ? j.value("error", "") : "<not json: " + r.body + ">";
  }

  PgTestDb db_;
  UpstreamServer upstream_;
  std::unique_ptr<GatewayProcess> gateway_;
};

// ---- every scheme, positive and negative -------------------------------------------------------

struct SchemeCase {
  SignatureScheme scheme;
  std::string name;
  std::string secret;
  std::string wrong_secret;
  bool timestamped;
};

class SchemesE2E : public DeliveryE2E, public ::testing::WithParamInterface<SchemeCase> {};

TEST_P(SchemesE2E, AcceptsCliAndIndependentSignaturesAndRejectsWrongOnes) {
  const auto& c = GetParam();
  auto t = add(signed_trigger("scheme-" + c.name, c.scheme), c.secret);
  start_gateway();
  const std::string body = R"({"event":"e2e","n":1})";

  const auto cli = post(t.spec.key, body, cli_sign(c.name, c.secret, body));
  EXPECT_EQ(cli.status, 200) << cli.body;
  auto row = row_of(cli);
  EXPECT_EQ(row["outcome"], "forwarded");
  EXPECT_EQ(row["status_code"], "200");
  EXPECT_EQ(row["hmac_verified"], "t");

  const auto independent =
      post(t.spec.key, body, independent_sign(c.scheme, c.secret, body, now_s()));
  EXPECT_EQ(independent.status, 200) << independent.body;
  ASSERT_TRUE(upstream_.wait_for_requests(2, std::chrono::seconds(5)));
  EXPECT_EQ(upstream_.requests()[1].body, body);

  const auto wrong = post(t.spec.key, body, cli_sign(c.name, c.wrong_secret, body));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(error_of(wrong), "signature_invalid");
  row = row_of(wrong);
  EXPECT_EQ(row["outcome"], "signature_invalid");
  EXPECT_EQ(row["status_code"], "401");
  EXPECT_EQ(row["hmac_verified"], "f");

  const auto tampered = post(t.spec.key, body + " ", cli_sign(c.name, c.secret, body));
  EXPECT_EQ(tampered.status, 401);
  EXPECT_EQ(error_of(tampered), "signature_invalid");

  const auto unsigned_request = post(t.spec.key, body, {});
  EXPECT_EQ(unsigned_request.status, 401);
  EXPECT_EQ(error_of(unsigned_request), "signature_missing");

  if (c.timestamped) {
    const auto stale_ts = std::to_string(now_s() - 1000);  // tolerance 300 s
    const auto stale =
        post(t.spec.key, body, cli_sign(c.name, c.secret, body, {"--timestamp", stale_ts}));
    EXPECT_EQ(stale.status, 401);
    EXPECT_EQ(error_of(stale), "signature_invalid");
    EXPECT_EQ(row_of(stale)["outcome"], "signature_invalid");
    const auto stale_independent =
        post(t.spec.key, body, independent_sign(c.scheme, c.secret, body, now_s() - 1000));
    EXPECT_EQ(stale_independent.status, 401);
  }
  EXPECT_EQ(upstream_.request_count(), 2u);
}

INSTANTIATE_TEST_SUITE_P(
    AllSchemes, SchemesE2E,
    ::testing::Values(
        SchemeCase{SignatureScheme::kGeneric, "generic", kSecret, kWrongSecret, false},
        SchemeCase{SignatureScheme::kGithub, "github", kSecret, kWrongSecret, false},
        SchemeCase{SignatureScheme::kStripe, "stripe", kSecret, kWrongSecret, true},
        SchemeCase{SignatureScheme::kSlack, "slack", kSecret, kWrongSecret, true},
        SchemeCase{SignatureScheme::kStandardWebhooks, "standard-webhooks", kWhsecSecret,
                   kWrongWhsecSecret, true},
        SchemeCase{SignatureScheme::kShopify, "shopify", kSecret, kWrongSecret, false}),
    [](const auto& info) {
      std::string name = info.param.name;
      std::erase(name, '-');
      return name;
    });

// Verifies `hookguard sign --id --timestamp` for the schemes that sign an id or a time.
TEST(SignCommand, HonoursIdAndTimestamp) {
  const std::string body = "{}";
  auto sw = cli_sign("standard-webhooks", kWhsecSecret, body,
                     {"--id", "msg_fixed", "--timestamp", "1700000000"});
  EXPECT_EQ(sw.get("webhook-id"), "msg_fixed");
  EXPECT_EQ(sw.get("webhook-timestamp"), "1700000000");
  EXPECT_EQ(sw.get("webhook-signature"),
            independent_sign(SignatureScheme::kStandardWebhooks, kWhsecSecret, body, 1700000000,
                             "msg_fixed")
                .get("webhook-signature"));
  auto stripe = cli_sign("stripe", kSecret, body, {"--timestamp", "1700000000"});
  EXPECT_EQ(stripe.get("Stripe-Signature"),
            independent_sign(SignatureScheme::kStripe, kSecret, body, 1700000000)
                .get("Stripe-Signature"));
  auto slack = cli_sign("slack", kSecret, body, {"--timestamp", "1700000000"});
  EXPECT_EQ(slack.get("X-Slack-Request-Timestamp"), "1700000000");
  EXPECT_EQ(slack.get("X-Slack-Signature"),
            independent_sign(SignatureScheme::kSlack, kSecret, body, 1700000000)
                .get("X-Slack-Signature"));
}

// ---- replay ------------------------------------------------------------------------------------

policy::TriggerSpec with_replay(policy::TriggerSpec spec) {
  spec.policy.replay.enabled = true;
  return spec;
}

HeaderList github_headers(const std::string& body, const std::string& delivery,
                          const std::string& secret = kSecret) {
  return {
      {"X-Hub-Signature-256", "sha256=" + policy::hmac_hex(HmacAlgorithm::kSha256, secret, body)},
      {"X-GitHub-Delivery", delivery},
      {"X-GitHub-Event", "push"}};
}

TEST_F(DeliveryE2E, ASecondCopyIsAnsweredDuplicateAndNotForwarded) {
  auto t = add(with_replay(signed_trigger("replay", SignatureScheme::kGithub)));
  start_gateway();
  const std::string body = R"({"ref":"main"})";
  const auto first = post(t.spec.key, body, github_headers(body, "d-0001"));
  EXPECT_EQ(first.status, 200) << first.body;
  auto row = row_of(first);
  EXPECT_EQ(row["outcome"], "forwarded");
  EXPECT_EQ(row["delivery_id"], "d-0001");
  EXPECT_EQ(row["event_type"], "push");

  const auto second = post(t.spec.key, body, github_headers(body, "d-0001"));
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, R"({"status":"duplicate"})");
  EXPECT_EQ(second.headers.get("Content-Type"), "application/json");
  row = row_of(second);
  EXPECT_EQ(row["outcome"], "duplicate");
  EXPECT_EQ(row["status_code"], "200");
  EXPECT_EQ(row["delivery_id"], "d-0001");
  EXPECT_EQ(row["event_type"], "push");
  EXPECT_EQ(row["hmac_verified"], "t");
  EXPECT_EQ(row["upstream_status"], std::nullopt);

  const auto other = post(t.spec.key, body, github_headers(body, "d-0002"));
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(row_of(other)["outcome"], "forwarded");
  EXPECT_EQ(upstream_.request_count(), 2u);
}

// Verifies that the id is recorded only after the signature verified.
TEST_F(DeliveryE2E, AForgedCopyDoesNotBurnTheDeliveryId) {
  auto t = add(with_replay(signed_trigger("forged", SignatureScheme::kGithub)));
  start_gateway();
  const std::string body = R"({"ref":"main"})";
  const auto forged = post(t.spec.key, body, github_headers(body, "d-forged", kWrongSecret));
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(error_of(forged), "signature_invalid");
  auto row = row_of(forged);
  EXPECT_EQ(row["outcome"], "signature_invalid");
  EXPECT_EQ(row["delivery_id"], "d-forged");

  const auto real = post(t.spec.key, body, github_headers(body, "d-forged"));
  EXPECT_EQ(real.status, 200) << real.body;
  EXPECT_EQ(row_of(real)["outcome"], "forwarded");
  EXPECT_EQ(upstream_.request_count(), 1u);
}

TEST_F(DeliveryE2E, AnUpstream500LetsTheRetryThrough) {
  auto t = add(with_replay(signed_trigger("retry", SignatureScheme::kGithub, "/status/500")));
  start_gateway();
  const std::string body = R"({"ref":"main"})";
  const auto first = post(t.spec.key, body, github_headers(body, "d-retry"));
  EXPECT_EQ(first.status, 500);
  auto row = row_of(first);
  EXPECT_EQ(row["outcome"], "forwarded");
  EXPECT_EQ(row["upstream_status"], "500");

  const auto retry = post(t.spec.key, body, github_headers(body, "d-retry"));
  EXPECT_EQ(retry.status, 500);
  EXPECT_EQ(row_of(retry)["outcome"], "forwarded");
  EXPECT_EQ(upstream_.request_count(), 2u);
}

TEST_F(DeliveryE2E, AnUpstream4xxCountsAsDelivered) {
  auto t = add(with_replay(signed_trigger("gone", SignatureScheme::kGithub, "/status/410")));
  start_gateway();
  const std::string body = R"({"ref":"main"})";
  EXPECT_EQ(post(t.spec.key, body, github_headers(body, "d-410")).status, 410);
  const auto again = post(t.spec.key, body, github_headers(body, "d-410"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, R"({"status":"duplicate"})");
  EXPECT_EQ(upstream_.request_count(), 1u);
}

// Verifies the in-flight answer: a copy arriving while the first is still being forwarded gets
// 409 with Retry-After (not a 200 that would make the sender give up), then "duplicate".
TEST_F(DeliveryE2E, ACopyWhileTheFirstIsInFlightGets409ThenDuplicate) {
  auto t = add(with_replay(signed_trigger("inflight", SignatureScheme::kGithub, "/delay/1500")));
  start_gateway();
  const std::string body = R"({"ref":"main"})";
  auto first = std::async(std::launch::async,
                          [&] { return post(t.spec.key, body, github_headers(body, "d-slow")); });
  ASSERT_TRUE(upstream_.wait_for_requests(1, std::chrono::seconds(5)));
  const auto copy = post(t.spec.key, body, github_headers(body, "d-slow"));
  EXPECT_EQ(copy.status, 409);
  EXPECT_EQ(error_of(copy), "delivery_in_flight");
  ASSERT_TRUE(copy.headers.get("Retry-After").has_value());
  const int retry_after = std::stoi(std::string(*copy.headers.get("Retry-After")));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 8);  // upstream timeout 3 s + 5 s margin
  auto row = row_of(copy);
  EXPECT_EQ(row["outcome"], "delivery_in_flight");
  EXPECT_EQ(row["status_code"], "409");

  EXPECT_EQ(first.get().status, 200);
  const auto later = post(t.spec.key, body, github_headers(body, "d-slow"));
  EXPECT_EQ(later.status, 200);
  EXPECT_EQ(later.body, R"({"status":"duplicate"})");
  EXPECT_EQ(upstream_.request_count(), 1u);
}

// Verifies the documented failure mode: with Redis unreachable, replay fails open — the
// delivery is forwarded (every copy) and each row says replay_store_error.
TEST_F(DeliveryE2E, AnUnreachableReplayStoreFailsOpenAndSaysSo) {
  auto t = add(with_replay(signed_trigger("redis-down", SignatureScheme::kGithub)));
  // Port 1 on loopback: nothing listens, the connect is refused at once.
  gateway_ = std::make_unique<GatewayProcess>(
      db_.dsn(), "redis: {host: 127.0.0.1, port: 1, connect_timeout_ms: 100}");
  ASSERT_TRUE(gateway_->start()) << gateway_->log();
  const std::string body = R"({"ref":"main"})";
  for (int i = 0; i < 2; ++i) {
    const auto r = post(t.spec.key, body, github_headers(body, "d-down"));
    EXPECT_EQ(r.status, 200) << r.body;
    auto row = row_of(r);
    EXPECT_EQ(row["outcome"], "forwarded");
    ASSERT_TRUE(row["error_message"].has_value());
    EXPECT_NE(row["error_message"]->find("replay_store_error"), std::string::npos)
        << *row["error_message"];
  }
  EXPECT_EQ(upstream_.request_count(), 2u);
}

// ---- events ------------------------------------------------------------------------------------

TEST_F(DeliveryE2E, AnUnlistedEventIsFilteredAndLogged) {
  auto spec = signed_trigger("events", SignatureScheme::kGithub);
  spec.policy.events = {true, {"push", "ping"}, ""};
  auto t = add(spec);
  start_gateway();
  const std::string body = R"({"action":"opened"})";
  auto headers = github_headers(body, "d-ev-1");
  headers.set("X-GitHub-Event", "issues");
  const auto filtered = post(t.spec.key, body, headers);
  EXPECT_EQ(filtered.status, 200);
  EXPECT_EQ(filtered.body, R"({"status":"filtered"})");
  auto row = row_of(filtered);
  EXPECT_EQ(row["outcome"], "filtered");
  EXPECT_EQ(row["status_code"], "200");
  EXPECT_EQ(row["event_type"], "issues");
  EXPECT_EQ(row["delivery_id"], "d-ev-1");

  headers.remove("X-GitHub-Event");
  const auto missing = post(t.spec.key, body, headers);
  EXPECT_EQ(missing.body, R"({"status":"filtered"})");
  EXPECT_EQ(row_of(missing)["event_type"], std::nullopt);

  const auto push = post(t.spec.key, body, github_headers(body, "d-ev-2"));
  EXPECT_EQ(push.status, 200);
  row = row_of(push);
  EXPECT_EQ(row["outcome"], "forwarded");
  EXPECT_EQ(row["event_type"], "push");
  EXPECT_EQ(upstream_.request_count(), 1u);
}

TEST_F(DeliveryE2E, FiltersOnATopLevelJsonField) {
  auto spec = signed_trigger("json-events", SignatureScheme::kGeneric);
  spec.policy.events = {true, {"invoice.paid"}, "json:type"};
  auto t = add(spec);
  start_gateway();
  const auto sign = [](const std::string& body) {
    return HeaderList{{"X-Webhook-Signature",
                       "sha256=" + policy::hmac_hex(HmacAlgorithm::kSha256, kSecret, body)}};
  };
  const std::string unlisted = R"({"type":"invoice.created","data":{"type":"invoice.paid"}})";
  const auto filtered = post(t.spec.key, unlisted, sign(unlisted));
  EXPECT_EQ(filtered.body, R"({"status":"filtered"})");
  auto row = row_of(filtered);
  EXPECT_EQ(row["outcome"], "filtered");
  EXPECT_EQ(row["event_type"], "invoice.created");

  const std::string listed = R"({"type":"invoice.paid"})";
  const auto forwarded = post(t.spec.key, listed, sign(listed));
  EXPECT_EQ(forwarded.status, 200);
  EXPECT_EQ(row_of(forwarded)["event_type"], "invoice.paid");
  EXPECT_EQ(upstream_.request_count(), 1u);
}

// ---- handshakes --------------------------------------------------------------------------------

TEST_F(DeliveryE2E, AnswersASignedTmiChallengeWithoutForwarding) {
  auto spec = signed_trigger("tmi", SignatureScheme::kGeneric);
  spec.policy.handshake = policy::Handshake::kTmi;
  auto t = add(spec);
  start_gateway();
  const std::string body = R"({"type":"webhook.challenge","challenge":"pa\"ss\u00e9"})";
  const auto r = post(t.spec.key, body, cli_sign("generic", kSecret, body));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"challenge\":\"pa\\\"ss\xc3\xa9\"}");
  EXPECT_EQ(r.headers.get("Content-Type"), "application/json");
  auto row = row_of(r);
  EXPECT_EQ(row["outcome"], "challenge");
  EXPECT_EQ(row["status_code"], "200");

  const auto unsigned_challenge = post(t.spec.key, body, {});
  EXPECT_EQ(unsigned_challenge.status, 401);
  EXPECT_EQ(error_of(unsigned_challenge), "signature_missing");
  EXPECT_EQ(upstream_.request_count(), 0u);
}

TEST_F(DeliveryE2E, AnswersASlackUrlVerification) {
  auto spec = signed_trigger("slack-hs", SignatureScheme::kSlack);
  spec.policy.handshake = policy::Handshake::kSlack;
  auto t = add(spec);
  start_gateway();
  // Slack's documented example (api.slack.com/events/url_verification).
  const std::string body =
      R"({"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"})";
  const auto r = post(t.spec.key, body, cli_sign("slack", kSecret, body));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})");
  EXPECT_EQ(row_of(r)["outcome"], "challenge");

  const std::string event = R"({"type":"event_callback","event":{"type":"message"}})";
  const auto forwarded = post(t.spec.key, event, cli_sign("slack", kSecret, event));
  EXPECT_EQ(forwarded.status, 200);
  EXPECT_EQ(row_of(forwarded)["outcome"], "forwarded");
  EXPECT_EQ(upstream_.request_count(), 1u);
}

}  // namespace
}  // namespace hookguard::testing
