#include "policy/trigger_codec.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <climits>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>
#include <variant>

#include "policy/yaml_documents.h"

namespace hookguard::policy {
namespace {

// ordered_json keeps document order, so the first error reported is the first one written.
using Json = nlohmann::ordered_json;

constexpr const char* kCode = "invalid_request";

tl::unexpected<Error> invalid(const std::string& path, const std::string& reason) {
  if (path.empty()) return fail(kCode, reason);
  return fail(kCode, path + ": " + reason, path);
}

std::string join(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string indexed(const std::string& parent, std::size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

// A name the sender chose ends up in an error message, a log line and a JSON error body:
// keep it short and printable so it can neither forge log lines nor break a JSON encoder.
std::string printable(std::string_view text) {
  constexpr std::size_t kMax = 64;
  std::string out;
  for (char ch : text.substr(0, kMax)) {
    const auto c = static_cast<unsigned char>(ch);
    out += (c >= 0x20 && c < 0x7f) ? ch : '?';
  }
  if (text.size() > kMax) out += "...";
  return out;
}

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 (RFC 3629 §3).
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

bool is_env_name(std::string_view name) {
  if (name.empty() || name.size() > 256) return false;
  if (name[0] >= '0' && name[0] <= '9') return false;
  for (char c : name) {
    const bool ok =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!ok) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The field table: one row per leaf field, in the order of DESIGN §5. The decoder, apply_patch
// and both encoders walk it, so a new field is one new row.

using Accessor = std::variant<bool& (*)(TriggerSpec&), int& (*)(TriggerSpec&),
                              std::int64_t& (*)(TriggerSpec&), std::string& (*)(TriggerSpec&),
                              std::vector<std::string>& (*)(TriggerSpec&), Mode& (*)(TriggerSpec&),
                              StoreErrorMode& (*)(TriggerSpec&), HmacAlgorithm& (*)(TriggerSpec&),
                              SignatureScheme& (*)(TriggerSpec&), Handshake& (*)(TriggerSpec&)>;

struct Field {
  std::string_view path;
  Accessor get;
};

#define HOOKGUARD_FIELD(path, member)                                      \
  Field {                                                                  \
    path, +[](TriggerSpec& s) -> decltype((s.member)) { return s.member; } \
  }

const std::vector<Field>& fields() {
  static const std::vector<Field> kFields{
      HOOKGUARD_FIELD("key", key),
      HOOKGUARD_FIELD("name", name),
      HOOKGUARD_FIELD("description", description),
      HOOKGUARD_FIELD("enabled", enabled),
      HOOKGUARD_FIELD("mode", mode),
      HOOKGUARD_FIELD("methods", methods),
      HOOKGUARD_FIELD("upstream_url", upstream_url),
      HOOKGUARD_FIELD("upstream_timeout_ms", upstream_timeout_ms),
      HOOKGUARD_FIELD("policy.payload_size_limit_kb", policy.payload_size_limit_kb),
      HOOKGUARD_FIELD("policy.ip_allowlist.enabled", policy.ip_allowlist.enabled),
      HOOKGUARD_FIELD("policy.ip_allowlist.cidrs", policy.ip_allowlist.cidrs),
      HOOKGUARD_FIELD("policy.rate_limit.enabled", policy.rate_limit.enabled),
      HOOKGUARD_FIELD("policy.rate_limit.requests", policy.rate_limit.requests),
      HOOKGUARD_FIELD("policy.rate_limit.window_seconds", policy.rate_limit.window_seconds),
      HOOKGUARD_FIELD("policy.rate_limit.per_source_ip", policy.rate_limit.per_source_ip),
      HOOKGUARD_FIELD("policy.rate_limit.on_store_error", policy.rate_limit.on_store_error),
      HOOKGUARD_FIELD("policy.hmac.enabled", policy.hmac.enabled),
      HOOKGUARD_FIELD("policy.hmac.scheme", policy.hmac.scheme),
      HOOKGUARD_FIELD("policy.hmac.algorithm", policy.hmac.algorithm),
      HOOKGUARD_FIELD("policy.hmac.header", policy.hmac.header),
      HOOKGUARD_FIELD("policy.hmac.timestamp_tolerance_seconds",
                      policy.hmac.timestamp_tolerance_seconds),
      HOOKGUARD_FIELD("policy.replay.enabled", policy.replay.enabled),
      HOOKGUARD_FIELD("policy.replay.window_seconds", policy.replay.window_seconds),
      HOOKGUARD_FIELD("policy.replay.header", policy.replay.header),
      HOOKGUARD_FIELD("policy.events.enabled", policy.events.enabled),
      HOOKGUARD_FIELD("policy.events.allow", policy.events.allow),
      HOOKGUARD_FIELD("policy.events.source", policy.events.source),
      HOOKGUARD_FIELD("policy.handshake", policy.handshake),
  };
  return kFields;
}

#undef HOOKGUARD_FIELD

const Field* find_field(std::string_view path) {
  for (const auto& field : fields()) {
    if (field.path == path) return &field;
  }
  return nullptr;
}

bool is_object_path(std::string_view path) {
  return path == "policy" || path == "policy.ip_allowlist" || path == "policy.rate_limit" ||
         path == "policy.hmac" || path == "policy.replay" || path == "policy.events";
}

// Fields the server owns. Naming them ("read-only field") helps a client that sends back what
// it read more than "unknown field" would.
bool is_read_only(std::string_view path, DecodeMode mode) {
  static const std::set<std::string_view> kReadOnly{"id",
                                                    "created",
                                                    "updated",
                                                    "secret_set",
                                                    "hmac_secret_enc",
                                                    "hmac_previous_secret_enc",
                                                    "hmac_previous_valid_until",
                                                    "policy.hmac.secret_set",
                                                    "policy.hmac.secret_enc",
                                                    "policy.hmac.previous_secret_enc",
                                                    "policy.hmac.previous_valid_until"};
  if (kReadOnly.contains(path)) return true;
  if (path == "key") return mode == DecodeMode::kPatch;
  if (path == "version") return mode != DecodeMode::kPatch;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Typed reads of one JSON value into one spec member.

Result<void> read(const Json& value, const std::string& path, bool& out) {
  if (!value.is_boolean()) return invalid(path, "expected a boolean (true or false)");
  out = value.get<bool>();
  return {};
}

Result<std::int64_t> read_integer(const Json& value, const std::string& path, std::int64_t min,
                                  std::int64_t max) {
  if (!value.is_number_integer()) return invalid(path, "expected an integer");
  if (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
    return invalid(path, "out of range");
  }
  const auto number = value.get<std::int64_t>();
  if (number < min || number > max) return invalid(path, "out of range");
  return number;
}

Result<void> read(const Json& value, const std::string& path, int& out) {
  auto number = read_integer(value, path, INT_MIN, INT_MAX);
  if (!number) return tl::unexpected(number.error());
  out = static_cast<int>(*number);
  return {};
}

Result<void> read(const Json& value, const std::string& path, std::int64_t& out) {
  auto number = read_integer(value, path, std::numeric_limits<std::int64_t>::min(),
                             std::numeric_limits<std::int64_t>::max());
  if (!number) return tl::unexpected(number.error());
  out = *number;
  return {};
}

Result<void> read(const Json& value, const std::string& path, std::string& out) {
  if (!value.is_string()) return invalid(path, "expected a string");
  const auto& text = value.get_ref<const std::string&>();
  if (text.size() > CodecLimits::kMaxStringBytes) {
    return invalid(path, "longer than " + std::to_string(CodecLimits::kMaxStringBytes) + " bytes");
  }
  out = text;
  return {};
}

Result<void> read(const Json& value, const std::string& path, std::vector<std::string>& out) {
  if (!value.is_array()) return invalid(path, "expected a list");
  if (value.size() > CodecLimits::kMaxArrayEntries) {
    return invalid(path, "at most " + std::to_string(CodecLimits::kMaxArrayEntries) + " entries");
  }
  std::vector<std::string> items;
  items.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    std::string item;
    if (auto ok = read(value[i], indexed(path, i), item); !ok) return ok;
    items.push_back(std::move(item));
  }
  out = std::move(items);
  return {};
}

template <class Enum, class Parser>
Result<void> read_enum(const Json& value, const std::string& path, Enum& out, Parser parse) {
  std::string text;
  if (auto ok = read(value, path, text); !ok) return ok;
  auto parsed = parse(text);
  if (!parsed) return invalid(path, parsed.error().message);
  out = *parsed;
  return {};
}

Result<void> read(const Json& value, const std::string& path, Mode& out) {
  return read_enum(value, path, out, parse_mode);
}
Result<void> read(const Json& value, const std::string& path, StoreErrorMode& out) {
  return read_enum(value, path, out, parse_store_error_mode);
}
Result<void> read(const Json& value, const std::string& path, HmacAlgorithm& out) {
  return read_enum(value, path, out, parse_hmac_algorithm);
}
Result<void> read(const Json& value, const std::string& path, SignatureScheme& out) {
  return read_enum(value, path, out, parse_signature_scheme);
}
Result<void> read(const Json& value, const std::string& path, Handshake& out) {
  return read_enum(value, path, out, parse_handshake);
}

// ---------------------------------------------------------------------------------------------
// The decoder proper: walks one Trigger document (already bounded in depth and size).

class Decoder {
 public:
  explicit Decoder(DecodeMode mode) : mode_(mode) {}

  Result<TriggerInput> decode(const Json& document) {
    if (!document.is_object()) return invalid("", "expected an object");
    if (auto ok = decode_object(document, ""); !ok) return tl::unexpected(ok.error());
    if (mode_ != DecodeMode::kPatch) {
      for (const char* required : {"name", "upstream_url"}) {
        if (!input_.present.contains(required)) return invalid(required, "required");
      }
    }
    return std::move(input_);
  }

 private:
  Result<void> decode_object(const Json& object, const std::string& path) {
    if (!object.is_object()) return invalid(path, "expected an object");
    for (const auto& [key, value] : object.items()) {
      // A key that itself contains a path separator would alias a nested field.
      if (key.find_first_of(".[]") != std::string::npos) {
        return invalid(join(path, printable(key)), "unknown field");
      }
      if (auto ok = decode_member(value, join(path, key)); !ok) return ok;
    }
    return {};
  }

  Result<void> decode_member(const Json& value, const std::string& path) {
    if (is_read_only(path, mode_)) return invalid(path, "read-only field");
    if (const Field* field = find_field(path)) {
      auto ok =
          std::visit([&](auto get) { return read(value, path, get(input_.spec)); }, field->get);
      if (ok) input_.present.insert(path);
      return ok;
    }
    if (is_object_path(path)) return decode_object(value, path);
    if (path == "version") {
      auto version = read_integer(value, path, 0, std::numeric_limits<std::int64_t>::max());
      if (!version) return tl::unexpected(version.error());
      input_.spec.version = *version;
      input_.present.insert(path);
      return {};
    }
    if (path == "policy.hmac.secret") {
      std::string secret;
      if (auto ok = read(value, path, secret); !ok) return ok;
      input_.secret = std::move(secret);
      input_.present.insert(path);
      return check_one_secret_source(path);
    }
    if (path == "policy.hmac.secret_env") {
      // The API must never let a client read the server's environment.
      if (mode_ != DecodeMode::kFile) return invalid(path, "only allowed in a triggers file");
      std::string name;
      if (auto ok = read(value, path, name); !ok) return ok;
      if (!is_env_name(name)) return invalid(path, "not an environment variable name");
      input_.secret_env = std::move(name);
      input_.present.insert(path);
      return check_one_secret_source(path);
    }
    return invalid(printable(path), "unknown field");
  }

  Result<void> check_one_secret_source(const std::string& path) {
    if (input_.secret && input_.secret_env) {
      return invalid(path, "give either secret or secret_env, not both");
    }
    return {};
  }

  DecodeMode mode_;
  TriggerInput input_;
};

// ---------------------------------------------------------------------------------------------
// JSON text → bounded DOM. nlohmann's parser is iterative, but the DOM it builds is not bounded:
// the callback enforces depth, array length and unique keys while parsing, before memory grows.

struct LimitExceeded {
  Error error;
};

class JsonGuard {
 public:
  bool operator()(int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start: {
        std::string path = child_path();
        count_element();
        if (frames_.size() + 1 > CodecLimits::kMaxDepth) {
          raise(path, "nested deeper than " + std::to_string(CodecLimits::kMaxDepth) + " levels");
        }
        frames_.push_back(
            Frame{event == Json::parse_event_t::array_start, 0, std::move(path), {}, {}});
        break;
      }
      case Json::parse_event_t::key: {
        auto& top = frames_.back();
        top.key = parsed.get<std::string>();
        // Duplicate keys are a parser-differential hazard: reject instead of keeping one.
        if (!top.keys.insert(top.key).second) {
          raise(join(top.path, printable(top.key)), "duplicate field");
        }
        // ordered_json finds keys by linear search: many keys would cost quadratic time.
        if (top.keys.size() > CodecLimits::kMaxArrayEntries) {
          raise(top.path, "at most " + std::to_string(CodecLimits::kMaxArrayEntries) + " fields");
        }
        break;
      }
      case Json::parse_event_t::value:
        count_element();
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        frames_.pop_back();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool array = false;
    std::size_t count = 0;
    std::string path;
    std::string key;
    std::set<std::string> keys;
  };

  std::string child_path() const {
    if (frames_.empty()) return "";
    const auto& top = frames_.back();
    return top.array ? indexed(top.path, top.count) : join(top.path, printable(top.key));
  }

  void count_element() {
    if (frames_.empty() || !frames_.back().array) return;
    auto& top = frames_.back();
    if (++top.count > CodecLimits::kMaxArrayEntries) {
      raise(top.path, "at most " + std::to_string(CodecLimits::kMaxArrayEntries) + " entries");
    }
  }

  [[noreturn]] static void raise(const std::string& path, const std::string& reason) {
    throw LimitExceeded{invalid(path, reason).value()};
  }

  std::vector<Frame> frames_;
};

Result<Json> parse_json(std::string_view text) {
  JsonGuard guard;
  try {
    return Json::parse(text.begin(), text.end(), std::ref(guard));
  } catch (const LimitExceeded& e) {
    return tl::unexpected(e.error);
  } catch (const Json::parse_error& e) {
    // nlohmann's own message quotes the input around the error: it could carry a secret.
    return fail(kCode, "invalid JSON at byte " + std::to_string(e.byte));
  } catch (const Json::exception&) {
    return fail(kCode, "invalid JSON");
  }
}

// ---------------------------------------------------------------------------------------------
// YAML → JSON with explicit scalar typing (YAML 1.2 core schema): the decoder then sees the
// same types whichever format the document came in.

bool is_decimal_integer(std::string_view text) {
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) text.remove_prefix(1);
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  // 0755 is octal in YAML 1.1 and decimal in 1.2: leave it a string rather than guess.
  return text.size() == 1 || text[0] != '0';
}

bool is_float(std::string_view text) {
  static const std::set<std::string_view> kSpecial{".inf",  ".Inf",  ".INF",  "+.inf",
                                                   "+.Inf", "+.INF", "-.inf", "-.Inf",
                                                   "-.INF", ".nan",  ".NaN",  ".NAN"};
  if (kSpecial.contains(text)) return true;
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  std::size_t digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++digits;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    std::size_t exponent = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++exponent;
    if (exponent == 0) return false;
  }
  return i == text.size();
}

class YamlToJson {
 public:
  Result<Json> convert(const YAML::Node& node, const std::string& path, std::size_t depth) {
    // Aliases share nodes, so a small file can expand enormously ("billion laughs").
    if (++nodes_ > CodecLimits::kMaxYamlNodes) {
      return invalid(path, "document too large (aliases expanded)");
    }
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return Json(nullptr);
      case YAML::NodeType::Scalar:
        return scalar(node, path);
      case YAML::NodeType::Sequence:
      case YAML::NodeType::Map:
        break;
    }
    // Lines of containers and map keys suffice to locate an error; recording every scalar
    // would cost a map entry per list item.
    if (!node.Mark().is_null()) lines_.emplace(path, node.Mark().line + 1);
    if (depth + 1 > CodecLimits::kMaxDepth) {
      return invalid(path,
                     "nested deeper than " + std::to_string(CodecLimits::kMaxDepth) + " levels");
    }
    const auto& tag = node.Tag();
    if (!tag.empty() && tag != "?" && tag != "!" && tag != "tag:yaml.org,2002:seq" &&
        tag != "tag:yaml.org,2002:map") {
      return invalid(path, "unsupported YAML tag");
    }
    if (node.IsSequence()) {
      if (node.size() > CodecLimits::kMaxArrayEntries) {
        return invalid(path,
                       "at most " + std::to_string(CodecLimits::kMaxArrayEntries) + " entries");
      }
      Json array = Json::array();
      std::size_t i = 0;
      for (const auto& item : node) {
        auto value = convert(item, indexed(path, i++), depth + 1);
        if (!value) return value;
        array.push_back(std::move(*value));
      }
      return array;
    }
    if (node.size() > CodecLimits::kMaxArrayEntries) {
      return invalid(path, "at most " + std::to_string(CodecLimits::kMaxArrayEntries) + " fields");
    }
    Json object = Json::object();
    std::set<std::string> seen;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) return invalid(path, "keys must be plain strings");
      const std::string& key = entry.first.Scalar();
      if (!is_valid_utf8(key)) return invalid(join(path, printable(key)), "not valid UTF-8");
      const std::string child = join(path, printable(key));
      // The key's line, not the value's: an empty value's mark points past it.
      if (!entry.first.Mark().is_null()) lines_[child] = entry.first.Mark().line + 1;
      if (!seen.insert(key).second) return invalid(child, "duplicate field");
      auto value = convert(entry.second, child, depth + 1);
      if (!value) return value;
      object[key] = std::move(*value);
    }
    return object;
  }

  /// The 1-based line of `path` or of its nearest enclosing node, 0 if unknown.
  int line_of(std::string path) const {
    while (true) {
      if (auto it = lines_.find(path); it != lines_.end()) return it->second;
      const auto cut = path.find_last_of(".[");
      if (cut == std::string::npos) return 0;
      path.resize(cut);
    }
  }

 private:
  static Result<Json> scalar(const YAML::Node& node, const std::string& path) {
    const std::string& text = node.Scalar();
    if (!is_valid_utf8(text)) return invalid(path, "not valid UTF-8");
    const std::string& tag = node.Tag();
    const std::string_view core = "tag:yaml.org,2002:";
    // "!" marks a quoted or block scalar: always a string.
    if (tag == "!" || tag == std::string(core) + "str") return Json(text);
    if (tag == "?") {
      if (text == "~" || text == "null" || text == "Null" || text == "NULL") return Json(nullptr);
      if (text == "true" || text == "True" || text == "TRUE") return Json(true);
      if (text == "false" || text == "False" || text == "FALSE") return Json(false);
      if (is_decimal_integer(text)) return integer(text, path);
      if (is_float(text)) return Json(0.5);  // only its type matters: no field takes a float
      return Json(text);
    }
    if (tag == std::string(core) + "int") {
      if (!is_decimal_integer(text)) return invalid(path, "not an integer");
      return integer(text, path);
    }
    if (tag == std::string(core) + "bool") {
      if (text == "true") return Json(true);
      if (text == "false") return Json(false);
      return invalid(path, "not a boolean");
    }
    if (tag == std::string(core) + "null") return Json(nullptr);
    if (tag == std::string(core) + "float") return Json(0.5);
    return invalid(path, "unsupported YAML tag");
  }

  static Result<Json> integer(std::string_view text, const std::string& path) {
    if (text[0] == '+') text.remove_prefix(1);
    std::int64_t number = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return invalid(path, "out of range");
    }
    return Json(number);
  }

  std::size_t nodes_ = 0;
  std::map<std::string, int> lines_;
};

Error with_line(Error error, int line) {
  if (line > 0) error.message += " (line " + std::to_string(line) + ")";
  return error;
}

// ---------------------------------------------------------------------------------------------
// Encoding.

template <class T>
Json encode(const T& value) {
  if constexpr (std::is_enum_v<T>) {
    return Json(std::string(to_string(value)));
  } else {
    return Json(value);
  }
}

// The spec's configurable fields as a nested object, in table order.
Json spec_fields(const TriggerSpec& spec) {
  TriggerSpec copy = spec;
  Json root = Json::object();
  for (const auto& field : fields()) {
    Json* node = &root;
    std::string_view path = field.path;
    for (auto dot = path.find('.'); dot != std::string_view::npos; dot = path.find('.')) {
      node = &(*node)[std::string(path.substr(0, dot))];
      path.remove_prefix(dot + 1);
    }
    (*node)[std::string(path)] = std::visit([&](auto get) { return encode(get(copy)); }, field.get);
  }
  return root;
}

void emit(YAML::Emitter& out, const Json& value) {
  if (value.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [key, item] : value.items()) {
      out << YAML::Key << key << YAML::Value;
      emit(out, item);
    }
    out << YAML::EndMap;
  } else if (value.is_array()) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const auto& item : value) emit(out, item);
    out << YAML::EndSeq;
  } else if (value.is_string()) {
    // Always quoted: a plain `true`, `123`, `null` or `a: b` would read back as something else.
    out << YAML::DoubleQuoted << value.get<std::string>();
  } else if (value.is_boolean()) {
    out << (value.get<bool>() ? "true" : "false");
  } else if (value.is_number_integer()) {
    out << value.get<std::int64_t>();
  } else {
    out << YAML::Null;
  }
}

}  // namespace

Result<TriggerInput> trigger_from_json(std::string_view json_text, DecodeMode mode) {
  auto document = parse_json(json_text);
  if (!document) return tl::unexpected(document.error());
  return Decoder(mode).decode(*document);
}

Result<Json> parse_bounded_json(std::string_view json_text) { return parse_json(json_text); }

Result<std::vector<TriggerInput>> triggers_from_yaml(std::string_view yaml_text) {
  std::vector<YAML::Node> documents;
  try {
    documents = load_first_documents(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return fail(kCode, "invalid YAML: " + e.msg);
    return fail(kCode, "invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (documents.size() > 1) return fail(kCode, "expected one YAML document, found several");

  YamlToJson converter;
  Json root;
  if (!documents.empty()) {
    try {
      auto converted = converter.convert(documents[0], "", 0);
      if (!converted) {
        return tl::unexpected(
            with_line(converted.error(), converter.line_of(converted.error().field)));
      }
      root = std::move(*converted);
    } catch (const YAML::Exception& e) {
      return fail(kCode, "invalid YAML: " + e.msg);
    }
  }
  auto located = [&](Error error) {
    return tl::unexpected(with_line(error, converter.line_of(error.field)));
  };

  if (root.is_null()) return invalid("triggers", "required");
  if (!root.is_object()) return invalid("", "expected a mapping with one key, triggers");
  for (const auto& [key, value] : root.items()) {
    if (key != "triggers") return located(invalid(printable(key), "unknown field").value());
  }
  if (!root.contains("triggers")) return invalid("triggers", "required");
  const Json& list = root["triggers"];
  if (!list.is_array()) return located(invalid("triggers", "expected a list").value());

  std::vector<TriggerInput> inputs;
  std::map<std::string, std::size_t> names;
  std::map<std::string, std::size_t> keys;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string prefix = indexed("triggers", i);
    auto input = Decoder(DecodeMode::kFile).decode(list[i]);
    if (!input) return located(with_prefix(input.error(), prefix));
    if (auto [it, fresh] = names.emplace(input->spec.name, i); !fresh) {
      return located(
          invalid(prefix + ".name", "duplicate name (also " + indexed("triggers", it->second) + ")")
              .value());
    }
    if (input->present.contains("key")) {
      if (auto [it, fresh] = keys.emplace(input->spec.key, i); !fresh) {
        return located(
            invalid(prefix + ".key", "duplicate key (also " + indexed("triggers", it->second) + ")")
                .value());
      }
    }
    inputs.push_back(std::move(*input));
  }
  return inputs;
}

void apply_patch(TriggerSpec& target, const TriggerInput& patch) {
  TriggerSpec source = patch.spec;
  for (const auto& field : fields()) {
    if (!patch.present.contains(std::string(field.path))) continue;
    std::visit([&](auto get) { get(target) = get(source); }, field.get);
  }
}

std::string trigger_to_json(const TriggerSpec& spec, bool secret_set, std::string_view created,
                            std::string_view updated) {
  Json out = Json::object();
  out["id"] = spec.id;
  const Json fields_tree = spec_fields(spec);
  for (const auto& [key, value] : fields_tree.items()) out[key] = value;
  out["policy"]["hmac"]["secret_set"] = secret_set;
  out["version"] = spec.version;
  out["created"] = std::string(created);
  out["updated"] = std::string(updated);
  // Replace rather than throw on invalid UTF-8: this runs inside request handlers.
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string triggers_to_yaml(const std::vector<TriggerSpec>& specs) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "triggers" << YAML::Value;
  if (specs.empty()) out << YAML::Flow;
  out << YAML::BeginSeq;
  for (const auto& spec : specs) {
    // The name leads each entry, as in a hand-written file: it is what apply matches on.
    const Json tree = spec_fields(spec);
    Json entry = Json::object();
    entry["name"] = tree["name"];
    for (const auto& [key, value] : tree.items()) entry[key] = value;
    emit(out, entry);
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace hookguard::policy
