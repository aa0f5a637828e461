#include "gateway/ingress_server.h"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string_view>

#include "gateway/reply_path.h"
#include "http/listen_address.h"

namespace hookguard::gateway {

namespace {

using namespace Pistache;

std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The request line and header fields together, as read before the block is complete: above
// the gateway's own caps (16 KiB of fields, 128-byte keys) with room for a long query string.
constexpr std::size_t kMaxRequestHeadBytes = 64 * 1024;

constexpr std::string_view kOversizedHeadBody =
    "{\"error\":\"headers_too_large\",\"message\":\"the request line and header fields exceed "
    "65536 bytes\"}";

class PistacheIngressHandler final : public Http::Handler {
 public:
  HTTP_PROTOTYPE(PistacheIngressHandler)

  PistacheIngressHandler(std::shared_ptr<const Ingress> ingress, Metrics* metrics)
      : ingress_(std::move(ingress)), metrics_(metrics) {}

  // Pistache parses the request line and header block again from their start on every read
  // until the block is complete (pistache #1190), and only the whole-request cap (the body
  // limit) bounds the block: a 4 MB header line sent in 0.3 s held a reactor for 7 s of CPU.
  // So the block is capped here, after every read that leaves it incomplete. Pistache's
  // Http::Handler::onInput is private (a subclass can replace it, not call it); the rest is
  // that function of Pistache 0.0.5 (src/common/http.cc), restated with public calls, except
  // that a 500 does not echo the exception's text.
  void onInput(const char* buffer, size_t len, const std::shared_ptr<Tcp::Peer>& peer) override {
    auto parser = getParser(peer);
    auto& request = parser->request;
    try {
      if (!parser->feed(buffer, len)) {
        parser->reset();
        throw Http::HttpError(Http::Code::Request_Entity_Too_Large,
                              "Request exceeded maximum buffer size");
      }
      if (parser->parse() != Http::Private::State::Done) {
        if (head_over_cap(*peer, *parser, len)) {
          parser->reset();
          refuse_oversized_head(*peer);
        }
        return;
      }
      Http::ResponseWriter response(request.version(), transport(), this, peer);
      request.copyAddress(peer->address());
      const auto connection = request.headers().tryGet<Http::Header::Connection>();
      response.headers().add<Http::Header::Connection>(connection ? connection->control()
                                                                  : Http::ConnectionControl::Close);
      peer->setIdle(false);
      onRequest(request, std::move(response));
      parser->reset();
    } catch (const Http::HttpError& err) {
      Http::ResponseWriter response(request.version(), transport(), this, peer);
      response.send(static_cast<Http::Code>(err.code()), err.reason());
      parser->reset();
    } catch (const std::exception&) {
      Http::ResponseWriter response(request.version(), transport(), this, peer);
      response.send(Http::Code::Internal_Server_Error, "Internal Server Error");
      parser->reset();
    }
  }

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
  // Bytes read for the current request while its head was incomplete; the parser's reset time
  // tells one request from the next, so a request read whole in one piece costs no lookup.
  struct HeadBytes {
    std::chrono::steady_clock::time_point request{};
    std::size_t bytes = 0;
  };

  static bool head_over_cap(Tcp::Peer& peer, Http::RequestParser& parser, std::size_t len) {
    if (parser.step()->id() == Http::Private::BodyStep::Id) return false;
    static const std::string kKey = "hookguard.head";
    auto head = std::static_pointer_cast<HeadBytes>(peer.tryGetData(kKey));
    if (!head) {
      head = std::make_shared<HeadBytes>();
      peer.putData(kKey, head);
    }
    if (head->request != parser.time()) *head = HeadBytes{parser.time(), 0};
    head->bytes += len;
    return head->bytes > kMaxRequestHeadBytes;
  }

  void refuse_oversized_head(Tcp::Peer& peer) {
    if (metrics_) metrics_->count_oversized_head();
    policy::HeaderList headers;
    headers.add("Content-Type", "application/json");
    ReplyPath::refuse(peer, 431, headers, kOversizedHeadBody, metrics_);
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
