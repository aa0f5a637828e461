// libFuzzer target: policy::verify_signature with random headers, body and secrets for every
// scheme and algorithm; plus the property that what sign_request produces always verifies.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "policy/headers.h"
#include "policy/signature.h"
#include "policy/trigger_policy.h"

using namespace hookguard::policy;

namespace {

// Header names the schemes read, so that random values reach the parsers behind them.
constexpr const char* kNames[] = {"X-Webhook-Signature",
                                  "X-Hub-Signature-256",
                                  "X-Hub-Signature",
                                  "Stripe-Signature",
                                  "X-Slack-Signature",
                                  "X-Slack-Request-Timestamp",
                                  "webhook-id",
                                  "webhook-timestamp",
                                  "webhook-signature",
                                  "svix-id",
                                  "svix-timestamp",
                                  "svix-signature",
                                  "X-Shopify-Hmac-Sha256",
                                  "X-Custom-Sig"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  HmacPolicy policy;
  policy.enabled = true;
  policy.scheme = static_cast<SignatureScheme>(in.ConsumeIntegralInRange<int>(0, 5));
  policy.algorithm = static_cast<HmacAlgorithm>(in.ConsumeIntegralInRange<int>(0, 2));
  if (in.ConsumeBool()) policy.header = "X-Custom-Sig";
  policy.timestamp_tolerance_seconds = in.ConsumeIntegralInRange<int>(0, 86400);
  const std::int64_t now = in.ConsumeIntegral<std::int64_t>();

  HeaderList headers;
  const int fields = in.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < fields; ++i) {
    std::string name =
        in.ConsumeBool() ? kNames[in.ConsumeIntegralInRange<std::size_t>(0, std::size(kNames) - 1)]
                         : in.ConsumeRandomLengthString(32);
    headers.add(std::move(name), in.ConsumeRandomLengthString(512));
  }
  const std::string secret = in.ConsumeRandomLengthString(64);
  const std::string previous = in.ConsumeRandomLengthString(64);
  const std::string body = in.ConsumeRemainingBytesAsString();

  (void)verify_signature(policy, headers, body, {secret, previous}, now);

  // A sender signing with the secret and the verifier checking at the same instant must agree,
  // for any instant a clock can show (1970 to 2100; the verifier may refuse negative times).
  const std::int64_t clock_now = now < 0 ? -(now + 1) % 4102444800 : now % 4102444800;
  auto signed_headers = sign_request(policy, secret, body, clock_now, "msg_fuzz");
  if (signed_headers) {
    if (verify_signature(policy, *signed_headers, body, {secret}, clock_now) !=
        SignatureStatus::kValid) {
      std::abort();
    }
  }
  return 0;
}
