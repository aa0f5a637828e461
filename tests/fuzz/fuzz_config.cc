// libFuzzer target: gateway.yaml parsing (parse_config) and the serve-time cross checks, with an
// environment that may override any key from the input.
#include <cstdint>
#include <optional>
#include <string>

#include "gateway/config.h"

using namespace hookguard;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  // Everything after a form feed is the value of every HOOKGUARD_* variable looked up.
  std::optional<std::string> env_value;
  if (auto ff = text.find('\f'); ff != std::string::npos) {
    env_value = text.substr(ff + 1);
    text.resize(ff);
  }
  auto env = [&](const std::string& name) -> std::optional<std::string> {
    if (!env_value || name.size() % 3 != 0) return std::nullopt;  // only some keys overridden
    return env_value;
  };
  auto config = gateway::parse_config(text, env);
  if (config) (void)gateway::validate_for_serve(*config);
  return 0;
}
