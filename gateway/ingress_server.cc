#include "gateway/ingress_server.h"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>

#include "gateway/reply_path.h"
#include "http/bounded_head_handler.h"
#include "http/listen_address.h"

namespace hookguard::gateway {

namespace {

using namespace Pistache;

std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The request line and header fields together while they arrive: above the gateway's own caps
// (16 KiB of fields, 128-byte keys) with room for a long query string.
constexpr std::size_t kMaxRequestHeadBytes = 64 * 1024;

class PistacheIngressHandler final : public http::BoundedHeadHandler {
 public:
  HTTP_PROTOTYPE(PistacheIngressHandler)

  PistacheIngressHandler(std::shared_ptr<const Ingress> ingress, Metrics* metrics)
      : BoundedHeadHandler(kMaxRequestHeadBytes), ingress_(std::move(ingress)), metrics_(metrics) {}

  void onRequest(const Http::Request& req, Http::ResponseWriter response) override {
    InboundRequest in;
    in.arrived_steady_us = steady_now_us();
    in.arrived_unix_ms = unix_now_ms();
    in.method = Http::methodString(req.method());
    in.target = req.resource();
    in.query = req.query().as_str();
    if (!in.query.empty() && in.query.front() == '?') in.query.erase(0, 1);
    // Pistache parses well-known headers into typed objects and keeps the rest raw; both are
    // copied, because the Request is reset as soon as this function returns.
    // One stream for all typed headers: constructing an ostringstream costs more than the
    // write itself.
    std::ostringstream value;
    for (const auto& header : req.headers().list()) {
      value.str({});
      value.clear();  // a header that failed to write must not silence the next ones
      header->write(value);
      in.headers.add(header->name(), value.str());
    }
    for (const auto& [name, raw] : req.headers().rawList()) in.headers.add(raw.name(), raw.value());
    if (auto cl = req.headers().tryGet<Http::Header::ContentLength>()) {
      in.content_length = cl->value();
    }
    in.body = req.body();
    in.peer = req.address().host();

    auto reply = ReplyPath::of(req, response, metrics_);
    // Handled (and logged) even when no one is left to answer.
    ingress_->handle(std::move(in), [reply = std::move(reply)](OutboundResponse out) {
      reply.send(out.status, out.headers, out.body);
    });
  }

  void onTimeout(const Http::Request& req, Http::ResponseWriter response) override {
    if (metrics_) metrics_->count_library_timeout();
    Http::Handler::onTimeout(req, std::move(response));
  }

 private:
  void on_oversized_head() override {
    if (metrics_) metrics_->count_oversized_head();
  }

  // Answers leave from the forwarder's threads; ReplyPath keeps them in request order.
  bool close_after_answers(const std::shared_ptr<Tcp::Peer>& peer, std::size_t at_least) override {
    return ReplyPath::close_after_answers(*peer, at_least, metrics_);
  }

  std::shared_ptr<const Ingress> ingress_;
  Metrics* metrics_;
};

}  // namespace

IngressServer::IngressServer(const IngressConfig& config, std::shared_ptr<const Ingress> ingress,
                             Metrics* metrics)
    : config_(config), ingress_(std::move(ingress)), metrics_(metrics) {}

IngressServer::~IngressServer() { stop(); }

Result<void> IngressServer::start() {
  try {
    Address addr(http::listen_address_text(config_.address, config_.port));
    endpoint_ = std::make_unique<Http::Endpoint>(addr);
    auto opts = Http::Endpoint::options()
                    .threads(config_.threads)
                    .flags(Tcp::Options::ReuseAddr)
                    // The limit covers request line + headers + body: leave 16 KiB of headers.
                    .maxRequestSize(static_cast<std::size_t>(config_.max_body_bytes) + 16384)
                    .headerTimeout(std::chrono::milliseconds(config_.header_timeout_ms))
                    .bodyTimeout(std::chrono::milliseconds(config_.body_timeout_ms))
                    .keepaliveTimeout(std::chrono::milliseconds(config_.keepalive_timeout_ms));
    endpoint_->init(opts);
    endpoint_->setHandler(Http::make_handler<PistacheIngressHandler>(ingress_, metrics_));
    endpoint_->serveThreaded();
  } catch (const std::exception& e) {
    endpoint_.reset();
    return fail("listen_failed", "ingress " + config_.address + ":" + std::to_string(config_.port) +
                                     ": " + e.what());
  }
  return {};
}

std::uint16_t IngressServer::port() const {
  return endpoint_ ? static_cast<std::uint16_t>(endpoint_->getPort()) : 0;
}

void IngressServer::stop() {
  if (!endpoint_) return;
  try {
    endpoint_->shutdown();
  } catch (const std::exception& e) {
    spdlog::warn("ingress shutdown: {}", e.what());
  }
  endpoint_.reset();
}

}  // namespace hookguard::gateway
