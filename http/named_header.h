// A Pistache response header with any name and value.
#pragma once

#include <pistache/http_header.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>

namespace hookguard::http {

/// Pistache 0.0.5 writes only typed headers into a response (raw ones are silently dropped), so
/// every header a server sets by name travels as one of these.
class NamedHeader final : public Pistache::Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  // A hash no built-in header has, so Pistache's checked casts never mistake this for one.
  std::uint64_t hash() const override {
    return Pistache::Http::Header::detail::hash(name_.c_str()) ^ 1;
  }
  void parse(const std::string& data) override { value_ = data; }
  void write(std::ostream& os) const override { os << value_; }

 private:
  std::string name_, value_;
};

}  // namespace hookguard::http
