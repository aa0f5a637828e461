#include "policy/delivery.h"

#include <openssl/evp.h>

#include <array>
#include <nlohmann/json.hpp>

#include "policy/encoding.h"

namespace hookguard::policy {
namespace {

using Json = nlohmann::json;

std::string_view trim_ows(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return value;
}

std::optional<std::string> header_value(const HeaderList& headers, std::string_view name) {
  const auto raw = headers.get(name);
  if (!raw) return std::nullopt;
  const auto value = trim_ows(*raw);
  if (value.empty()) return std::nullopt;
  return std::string(value);
}

// A SAX reader that keeps one top-level string field and builds nothing else: no DOM for a body
// of up to the payload limit, depth bounded, and a duplicated field made ambiguous rather than
// resolved one way (the upstream's parser may keep the other copy).
class TopLevelField {
 public:
  explicit TopLevelField(std::string_view field) : field_(field) {}

  bool null() { return scalar(); }
  bool boolean(bool) { return scalar(); }
  bool number_integer(Json::number_integer_t) { return scalar(); }
  bool number_unsigned(Json::number_unsigned_t) { return scalar(); }
  bool number_float(Json::number_float_t, const Json::string_t&) { return scalar(); }
  bool binary(Json::binary_t&) { return scalar(); }
  bool string(Json::string_t& value) {
    if (depth_ == 0) return false;  // a bare string is no object
    if (pending_) value_ = std::move(value);
    pending_ = false;
    return true;
  }
  bool start_object(std::size_t) { return open(true); }
  bool start_array(std::size_t) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(Json::string_t& key) {
    if (depth_ == 1 && key == field_) {
      pending_ = true;
      ++seen_;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

  std::optional<std::string> result() && {
    if (seen_ != 1 || !value_) return std::nullopt;
    return std::move(value_);
  }

 private:
  bool scalar() {
    pending_ = false;
    return depth_ > 0;  // a bare scalar is no object
  }
  bool open(bool object) {
    if (depth_ == 0 && !object) return false;
    pending_ = false;
    return ++depth_ <= DeliveryLimits::kMaxJsonDepth;
  }
  bool close() {
    --depth_;
    return true;
  }

  std::string_view field_;
  std::size_t depth_ = 0;
  bool pending_ = false;
  std::size_t seen_ = 0;
  std::optional<std::string> value_;
};

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr);
  return to_hex(std::string_view(reinterpret_cast<const char*>(digest.data()), size));
}

}  // namespace

std::string delivery_id_header(const TriggerPolicy& policy, const HeaderList& headers) {
  if (!policy.replay.header.empty()) return policy.replay.header;
  switch (policy.hmac.scheme) {
    case SignatureScheme::kStandardWebhooks: {
      // The same family choice as verify_signature, so the id checked is the id signed.
      const bool svix = policy.hmac.header.empty()
                            ? !headers.get("webhook-signature") && headers.get("svix-signature")
                            : !headers.get("webhook-id") && headers.get("svix-id");
      return svix ? "svix-id" : "webhook-id";
    }
    case SignatureScheme::kGithub:
      return "X-GitHub-Delivery";
    case SignatureScheme::kGeneric:
    case SignatureScheme::kStripe:
    case SignatureScheme::kSlack:
    case SignatureScheme::kShopify:
      break;
  }
  return "X-Webhook-Delivery-Id";
}

std::optional<std::string> delivery_id(const TriggerPolicy& policy, const HeaderList& headers) {
  return header_value(headers, delivery_id_header(policy, headers));
}

EventSource event_source(const TriggerPolicy& policy) {
  const std::string_view source = policy.events.source;
  if (source.starts_with("json:")) return {EventSource::Kind::kJson, std::string(source.substr(5))};
  if (source.starts_with("header:")) {
    return {EventSource::Kind::kHeader, std::string(source.substr(7))};
  }
  return {EventSource::Kind::kHeader,
          policy.hmac.scheme == SignatureScheme::kGithub ? "X-GitHub-Event" : "X-Webhook-Event"};
}

std::optional<std::string> header_event_type(const EventSource& source, const HeaderList& headers) {
  if (source.kind != EventSource::Kind::kHeader) return std::nullopt;
  return header_value(headers, source.name);
}

std::optional<std::string> event_type(const EventSource& source, const HeaderList& headers,
                                      std::string_view body) {
  if (source.kind == EventSource::Kind::kHeader) return header_event_type(source, headers);
  return top_level_json_string(body, source.name);
}

std::optional<std::string> top_level_json_string(std::string_view body, std::string_view field) {
  try {
    TopLevelField reader(field);
    if (!Json::sax_parse(body.begin(), body.end(), &reader)) return std::nullopt;
    return std::move(reader).result();
  } catch (...) {
    // sax_parse reports syntax errors through the handler; only allocation can throw here.
    return std::nullopt;
  }
}

HandshakeCheck check_handshake(Handshake handshake, std::string_view body) {
  std::string_view expected_type;
  switch (handshake) {
    case Handshake::kNone:
      return {};
    case Handshake::kTmi:
      expected_type = "webhook.challenge";
      break;
    case Handshake::kSlack:
      expected_type = "url_verification";
      break;
  }
  // A handshake is a few hundred bytes: anything larger is an event, and is not parsed here.
  if (body.size() > DeliveryLimits::kMaxHandshakeBodyBytes) return {};
  const auto type = top_level_json_string(body, "type");
  if (!type || *type != expected_type) return {};
  auto challenge = top_level_json_string(body, "challenge");
  if (!challenge || challenge->empty() || challenge->size() > DeliveryLimits::kMaxChallengeBytes) {
    return {HandshakeCheck::Kind::kBadChallenge, {}};
  }
  return {HandshakeCheck::Kind::kChallenge, std::move(*challenge)};
}

std::string replay_key(const CompiledTrigger& trigger, std::string_view delivery_id) {
  return "hg:rp:{t" + std::to_string(trigger.spec.id) + "}:" + sha256_hex(delivery_id);
}

}  // namespace hookguard::policy
