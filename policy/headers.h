// An ordered list of HTTP header fields with case-insensitive lookup.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookguard::policy {

/// Case-insensitive ASCII comparison of two header names.
bool header_name_equals(std::string_view a, std::string_view b);

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
