// libFuzzer target: the Trigger JSON document of the admin API (policy::trigger_from_json) in
// every decode mode; what decodes is validated and printed back with trigger_to_json.
#include <cstdint>
#include <string_view>

#include "policy/trigger_codec.h"
#include "policy/trigger_policy.h"

using namespace hookguard::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto mode = static_cast<DecodeMode>(data[0] % 3);
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto decoded = trigger_from_json(text, mode);
  if (!decoded) return 0;
  (void)validate(decoded->spec);
  TriggerSpec patched;
  apply_patch(patched, *decoded);
  (void)trigger_to_json(decoded->spec, decoded->secret.has_value(), "c", "u");
  return 0;
}
