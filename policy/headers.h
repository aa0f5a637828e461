// An ordered list of HTTP header fields with case-insensitive lookup, and the checks of what may
// stand in a method, a field name and a field value.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookguard::policy {

/// Case-insensitive ASCII comparison of two header names.
bool header_name_equals(std::string_view a, std::string_view b);

/// True for an RFC 9110 §5.6.2 tchar, the bytes of a method or a field name (ASCII only,
/// whatever the locale).
bool is_tchar(char c);
/// True for an RFC 9110 token (1*tchar): a valid method or header field name.
bool is_token(std::string_view text);
/// True for a field value without control bytes (CR, LF, NUL, DEL, ...) other than HTAB: what
/// the gateway accepts from a sender and forwards.
bool is_valid_header_value(std::string_view value);
/// True when `value` holds CR, LF or NUL, the bytes that would end or cut a header line: the
/// least a value must be free of to be written into, or read from, a request or response head.
bool has_line_break_or_nul(std::string_view value);

/// HTTP header fields in arrival order; names compare case-insensitively.
class HeaderList {
 public:
  using Field = std::pair<std::string, std::string>;

  HeaderList() = default;
  HeaderList(std::initializer_list<Field> fields) : fields_(fields) {}

  /// Appends a field (duplicates are kept, in order).
  void add(std::string name, std::string value);
  /// The first value of `name`, if present.
  std::optional<std::string_view> get(std::string_view name) const;
  /// Removes every field called `name`.
  void remove(std::string_view name);
  /// Replaces every field called `name` by one field with `value`.
  void set(std::string name, std::string value);

  const std::vector<Field>& fields() const { return fields_; }
  std::size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

}  // namespace hookguard::policy
