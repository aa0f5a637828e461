#include "policy/headers.h"

#include <algorithm>

namespace hookguard::policy {
namespace {

// Locale-independent on purpose: header names are ASCII tokens (RFC 9110 §5.1).
char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool header_name_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_tchar);
}

bool is_valid_header_value(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7f;
  });
}

bool has_line_break_or_nul(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

void HeaderList::add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string_view> HeaderList::get(std::string_view name) const {
  for (const auto& [field_name, value] : fields_) {
    if (header_name_equals(field_name, name)) return std::string_view(value);
  }
  return std::nullopt;
}

void HeaderList::remove(std::string_view name) {
  std::erase_if(fields_, [&](const Field& f) { return header_name_equals(f.first, name); });
}

void HeaderList::set(std::string name, std::string value) {
  remove(name);
  add(std::move(name), std::move(value));
}

}  // namespace hookguard::policy
