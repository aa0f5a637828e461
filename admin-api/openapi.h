// The OpenAPI 3 document of the admin API (admin-api/openapi.yaml, embedded at build time).
#pragma once

#include <string_view>

namespace hookguard::admin {

/// The text of admin-api/openapi.yaml as it was when the binary was built.
std::string_view openapi_yaml();

}  // namespace hookguard::admin
