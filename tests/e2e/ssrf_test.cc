// End-to-end SSRF guard (issue #7, docs/stack-pitfalls.md B2 and C7.46): upstream.deny_networks
// is enforced at connect time on the address libcurl resolved, whatever spelling the URL used.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/http_client.h"
#include "tests/support/test_env.h"
#include "tests/support/upstream_server.h"

namespace hookguard::testing {
namespace {

using hookguard::testing::error_of;

class SsrfGuard : public ::testing::Test {
 protected:
  PgTestDb db_;
  UpstreamServer upstream_;
};

// Verifies that a trigger pointing into a denied network gets 502 upstream_denied, with a row,
// and that not one TCP connection reaches the upstream — also for other spellings of 127.0.0.1
// (decimal, short form) and for a host name that resolves into the network. (An IPv4-mapped
// IPv6 literal is refused earlier, by trigger validation.)
TEST_F(SsrfGuard, UpstreamInADeniedNetworkGets502AndIsNeverConnected) {
  const std::string port = std::to_string(upstream_.port());
  const std::string urls[] = {"http://127.0.0.1:" + port + "/in", "http://2130706433:" + port + "/",
                              "http://127.1:" + port + "/", "http://localhost:" + port + "/"};
  std::vector<std::string> keys;
  int n = 0;
  for (const auto& url : urls) {
    auto spec = basic_trigger("denied-" + std::to_string(n++), url);
    keys.push_back(insert_trigger(db_.dsn(), spec).spec.key);
  }
  GatewayProcess gateway(
      db_.dsn(),
      "upstream: {timeout_ms: 5000, deny_networks: [127.0.0.0/8, \"::1/128\", 169.254.0.0/16]}\n");
  ASSERT_TRUE(gateway.start()) << gateway.log();

  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto r = http_request("POST", gateway.ingress_url("/webhooks/" + keys[i]), {}, "{}");
    EXPECT_EQ(r.status, 502) << urls[i] << ": " << r.body;
    EXPECT_EQ(error_of(r), "upstream_denied") << urls[i];
    auto id = r.headers.get("X-Request-Id");
    ASSERT_TRUE(id.has_value());
    auto row = wait_for_log_row(db_.dsn(), std::string(*id));
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ((*row)["outcome"], "upstream_denied") << urls[i];
    EXPECT_EQ((*row)["status_code"], "502");
    EXPECT_EQ((*row)["upstream_status"], std::nullopt);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(upstream_.accepted_connections(), 0);
  EXPECT_EQ(upstream_.request_count(), 0u);
}

// The same upstream is reachable when its network is not denied (the default list leaves
// loopback open): the 502 above is the guard, not a broken upstream.
TEST_F(SsrfGuard, TheSameUpstreamIsReachableWhenItsNetworkIsNotDenied) {
  auto t = insert_trigger(db_.dsn(), basic_trigger("allowed", upstream_.url("/in")));
  GatewayProcess gateway(db_.dsn());
  ASSERT_TRUE(gateway.start()) << gateway.log();
  auto r = http_request("POST", gateway.ingress_url("/webhooks/" + t.spec.key), {}, "{}");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(upstream_.accepted_connections(), 1);
}

}  // namespace
}  // namespace hookguard::testing
