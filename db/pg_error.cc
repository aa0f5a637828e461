#include "db/pg_error.h"

#include <cstdlib>
#include <pqxx/pqxx>
#include <string_view>
#include <vector>

namespace hookguard::db {
namespace {

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const std::string hex(text.substr(i + 1, 2));
      char* end = nullptr;
      const long value = std::strtol(hex.c_str(), &end, 16);
      if (end == hex.c_str() + 2) {
        out.push_back(static_cast<char>(value));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

void replace_all(std::string& text, const std::string& needle) {
  if (needle.empty()) return;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 3)) {
    text.replace(pos, needle.size(), "***");
  }
}

}  // namespace

std::string redact_dsn_password(std::string message, const std::string& dsn) {
  std::vector<std::string> secrets;
  // URI form: scheme://user:password@host...
  if (const auto scheme = dsn.find("://"); scheme != std::string::npos) {
    const auto authority_end = dsn.find_first_of("/?", scheme + 3);
    const std::string_view authority = std::string_view(dsn).substr(
        scheme + 3,
        authority_end == std::string::npos ? std::string::npos : authority_end - scheme - 3);
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
      const std::string_view userinfo = authority.substr(0, at);
      if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) {
        const std::string_view pw = userinfo.substr(colon + 1);
        secrets.emplace_back(pw);
        secrets.push_back(percent_decode(pw));
      }
    }
  }
  // Keyword form (also valid as a URI query parameter): password=secret
  for (auto pos = dsn.find("password="); pos != std::string::npos;
       pos = dsn.find("password=", pos + 9)) {
    const auto start = pos + 9;
    std::string value;
    if (start < dsn.size() && dsn[start] == '\'') {
      const auto close = dsn.find('\'', start + 1);
      value =
          dsn.substr(start + 1, close == std::string::npos ? std::string::npos : close - start - 1);
    } else {
      const auto end = dsn.find_first_of(" &", start);
      value = dsn.substr(start, end == std::string::npos ? std::string::npos : end - start);
    }
    secrets.push_back(value);
    secrets.push_back(percent_decode(value));
  }
  for (const auto& secret : secrets) replace_all(message, secret);
  return message;
}

Error error_from_exception(const std::exception& e, const std::string& context,
                           const std::string& dsn, const std::string& fallback_code) {
  std::string what = e.what();
  while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
  const bool unavailable = dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr;
  return Error{unavailable ? "db_unavailable" : fallback_code,
               redact_dsn_password(context + ": " + what, dsn), ""};
}

}  // namespace hookguard::db
