// The address text Pistache's Address parser accepts for a configured listen address.
#pragma once

#include <string>

namespace hookguard::http {

/// "host:port" for an IP literal ("0.0.0.0", "::", "[::1]"): Pistache throws "Invalid port" on
/// an IPv6 host without brackets, so IPv6 hosts get them (and keep them if already there).
inline std::string listen_address_text(const std::string& address, int port) {
  std::string host = address;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

}  // namespace hookguard::http
