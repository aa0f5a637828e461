// libFuzzer target: the triggers file (policy::triggers_from_yaml); what decodes is validated,
// exported with triggers_to_yaml, and must decode again.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "policy/trigger_codec.h"
#include "policy/trigger_policy.h"

using namespace hookguard::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto decoded = triggers_from_yaml(text);
  if (!decoded) return 0;
  std::vector<TriggerSpec> specs;
  for (const auto& input : *decoded) {
    if (validate(input.spec)) specs.push_back(input.spec);
  }
  if (!triggers_from_yaml(triggers_to_yaml(specs))) std::abort();
  return 0;
}
