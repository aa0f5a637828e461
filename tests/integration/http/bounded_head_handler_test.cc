// BoundedHeadHandler's contract with a handler that answers later (the ingress's): what it does
// when that handler says whether answers still await, on a real Pistache endpoint. The handler
// here is scripted: it answers inside onRequest and reports whatever the test sets.
#include "http/bounded_head_handler.h"

#include <gtest/gtest.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "http/listen_address.h"
#include "tests/support/http_client.h"

namespace {

using namespace Pistache;
using hookguard::testing::raw_exchange;

// What the handler reports, shared by the clones Pistache makes for its reactors.
struct Script {
  std::atomic<std::size_t> awaiting{0};  // requests whose answers are not out yet
  // Those answers go out just before close_after_answers() looks: it declines to close.
  std::atomic<bool> out_meanwhile{false};
  std::atomic<int> asked{0};   // close_after_answers() calls
  std::atomic<int> closes{0};  // ... that ended the connection
  std::atomic<int> requests{0};
};

class ScriptedHandler final : public hookguard::http::BoundedHeadHandler {
 public:
  HTTP_PROTOTYPE(ScriptedHandler)

  explicit ScriptedHandler(std::shared_ptr<Script> script)
      : BoundedHeadHandler(64 * 1024), script_(std::move(script)) {}

  void onRequest(const Http::Request&, Http::ResponseWriter response) override {
    script_->requests.fetch_add(1);
    response.send(Http::Code::Ok, "taken");
  }

 protected:
  bool close_after_answers(const std::shared_ptr<Tcp::Peer>&, std::size_t at_least) override {
    script_->asked.fetch_add(1);
    if (script_->awaiting.load() < at_least || script_->out_meanwhile.load()) return false;
    script_->closes.fetch_add(1);
    return true;
  }

 private:
  std::shared_ptr<Script> script_;
};

class BoundedHeadHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = std::make_unique<Http::Endpoint>(
        Address(hookguard::http::listen_address_text("127.0.0.1", 0)));
    // Room for a head over the handler's 64 KiB cap (Pistache's own default limit is 4 KiB).
    endpoint_->init(Http::Endpoint::options()
                        .threads(1)
                        .flags(Tcp::Options::ReuseAddr)
                        .maxRequestSize(256 * 1024));
    endpoint_->setHandler(Http::make_handler<ScriptedHandler>(script_));
    endpoint_->serveThreaded();
    port_ = static_cast<int>(static_cast<std::uint16_t>(endpoint_->getPort()));
  }
  void TearDown() override { endpoint_->shutdown(); }

  void awaiting(std::size_t requests, bool out_meanwhile) {
    script_->awaiting = requests;
    script_->out_meanwhile = out_meanwhile;
  }

  std::string exchange(const std::string& raw, int timeout_ms = 1000) {
    return raw_exchange("127.0.0.1", port_, raw, timeout_ms);
  }

  std::shared_ptr<Script> script_ = std::make_shared<Script>();
  std::unique_ptr<Http::Endpoint> endpoint_;
  int port_ = 0;
};

const std::string kBadRequest = "BREW / HTTP/1.1\r\nHost: t\r\n\r\n";
const std::string kGet = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

// The answers it was told await went out before it asked to close after them: the library's
// own error answer is then in order, and is sent, instead of a connection nobody reads or ends.
TEST_F(BoundedHeadHandlerTest, ALibraryErrorIsAnsweredWhenTheAwaitedAnswersWentOutMeanwhile) {
  awaiting(1, /*out_meanwhile=*/true);
  const std::string got = exchange(kBadRequest);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 400") << got;
  EXPECT_EQ(script_->asked.load(), 1);
}

// While answers await, the library's error answer would overtake them: none is written (ending
// the connection after them is the handler's part).
TEST_F(BoundedHeadHandlerTest, ALibraryErrorIsNotAnsweredWhileAnswersAwait) {
  awaiting(1, /*out_meanwhile=*/false);
  EXPECT_EQ(exchange(kBadRequest, 500), "");
  EXPECT_EQ(script_->asked.load(), 1);
}

// A client kMaxUnanswered requests ahead is not read further, unless those answers have all
// gone out by the time the connection would be ended: then the request is taken.
TEST_F(BoundedHeadHandlerTest, TheRequestBeyondTheBoundIsTakenWhenTheAnswersWentOutMeanwhile) {
  awaiting(32, /*out_meanwhile=*/true);
  const std::string got = exchange(kGet);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 200") << got;
  EXPECT_EQ(script_->requests.load(), 1);
}

TEST_F(BoundedHeadHandlerTest, TheRequestBeyondTheBoundIsNotTakenWhileAnswersAwait) {
  awaiting(32, /*out_meanwhile=*/false);
  EXPECT_EQ(exchange(kGet, 500), "");
  EXPECT_EQ(script_->requests.load(), 0);
  EXPECT_EQ(script_->asked.load(), 1);
}

// A head over the cap is refused with 431 when nothing awaits an answer any more.
TEST_F(BoundedHeadHandlerTest, AnOversizedHeadGets431WhenTheAwaitedAnswersWentOutMeanwhile) {
  awaiting(1, /*out_meanwhile=*/true);
  const std::string head =
      "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n";
  const std::string got = exchange(head);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 431") << got.substr(0, 200);
  EXPECT_EQ(script_->requests.load(), 0);
}

// Below the bound the request is taken and the connection goes on.
TEST_F(BoundedHeadHandlerTest, ARequestBelowTheBoundIsTaken) {
  awaiting(31, /*out_meanwhile=*/false);
  const std::string got = exchange(kGet);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 200") << got;
  EXPECT_EQ(script_->closes.load(), 0);
}

}  // namespace
