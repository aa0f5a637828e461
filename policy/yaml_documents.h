// Loading YAML that should hold one document, without yaml-cpp's unbounded LoadAll.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace hookguard::policy {

/// The first document of `text`, plus an empty node when there is more than one: never more
/// than two entries, none for a text without a document. Throws YAML::Exception like
/// YAML::LoadAll.
///
/// yaml-cpp 0.7's YAML::LoadAll never returns on some malformed input (",\xfe", ",:  [\nx]"):
/// the parser keeps reporting another empty document without consuming any input, and memory
/// grows until the process dies (found by tests/fuzz/fuzz_config and fuzz_trigger_yaml). Callers
/// want one document, so this counts documents with a bounded loop and builds only the first.
std::vector<YAML::Node> load_first_documents(const std::string& text);

}  // namespace hookguard::policy
