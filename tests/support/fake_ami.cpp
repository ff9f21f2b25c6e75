#include "support/fake_ami.hpp"

#include "support/test_tls.hpp"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <fstream>

namespace voxbridge::testing {

namespace asio = boost::asio;
using asio::ip::tcp;

struct FakeAmi::Conn {
  explicit Conn(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;  // over `socket`, when TLS
  std::mutex write_mu;
  std::string challenge;
  std::atomic<bool> logged_in{false};
};

FakeAmi::FakeAmi(std::string username, std::string secret, bool tls)
    : username_(std::move(username)),
      secret_(std::move(secret)),
      tls_(tls),
      acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  if (tls_) {
    const auto [cert, key] = self_signed_localhost();
    tls_ctx_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls_ctx_->use_certificate_chain(asio::buffer(cert));
    tls_ctx_->use_private_key(asio::buffer(key), asio::ssl::context::pem);
    ca_file_ = (std::filesystem::temp_directory_path() /
                ("vb-fake-ami-ca-" + std::to_string(port_) + ".pem"))
                   .string();
    std::ofstream(ca_file_) << cert;
  }
  acceptor_thread_ = std::thread([this] { accept_loop(); });
}

FakeAmi::~FakeAmi() {
  stopping_ = true;
  // A blocking accept() in another thread wakes on shutdown(), not on close().
  ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
  boost::system::error_code ec;
  acceptor_.close(ec);
  drop_connections();
  acceptor_thread_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  if (!ca_file_.empty()) std::filesystem::remove(ca_file_);
}

void FakeAmi::accept_loop() {
  while (!stopping_) {
    boost::system::error_code ec;
    tcp::socket s(io_);
    acceptor_.accept(s, ec);
    if (ec) return;
    auto c = std::make_shared<Conn>(std::move(s));
    std::lock_guard lock(mu_);
    conns_.push_back(c);
    threads_.emplace_back([this, c] { serve(c); });
  }
}

void FakeAmi::send(Conn& c, const control::AmiFields& fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += k + ": " + v + "\r\n";
  out += "\r\n";
  std::lock_guard lock(c.write_mu);
  boost::system::error_code ec;
  if (c.tls) {
    asio::write(*c.tls, asio::buffer(out), ec);
  } else {
    asio::write(c.socket, asio::buffer(out), ec);
  }
}

void FakeAmi::serve(std::shared_ptr<Conn> c) {
  if (tls_) {
    c->tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(c->socket, *tls_ctx_);
    boost::system::error_code ec;
    c->tls->handshake(asio::ssl::stream_base::server, ec);
    if (ec) {
      c->socket.close(ec);
      return;
    }
  }
  {
    std::lock_guard lock(c->write_mu);
    boost::system::error_code ec;
    const std::string banner = "Asterisk Call Manager/13.0.0\r\n";
    if (c->tls) {
      asio::write(*c->tls, asio::buffer(banner), ec);
    } else {
      asio::write(c->socket, asio::buffer(banner), ec);
    }
  }
  control::AmiParser parser;
  std::vector<control::AmiMessage> msgs;
  char buf[4096];
  for (;;) {
    boost::system::error_code ec;
    const std::size_t n = c->tls ? c->tls->read_some(asio::buffer(buf), ec)
                                 : c->socket.read_some(asio::buffer(buf), ec);
    if (ec) break;
    msgs.clear();
    if (!parser.feed(std::string_view(buf, n), msgs)) break;
    for (const auto& m : msgs) handle(*c, m);
  }
  boost::system::error_code ignored;
  c->socket.close(ignored);
}

void FakeAmi::handle(Conn& c, const control::AmiMessage& m) {
  const std::string action(m.get("Action"));
  const std::string id(m.get("ActionID"));
  {
    std::lock_guard lock(mu_);
    actions_.push_back(m);
  }
  cv_.notify_all();
  auto reply = [&](const std::string& response, const std::string& message,
                   control::AmiFields extra = {}) {
    control::AmiFields f{{"Response", response}};
    if (!id.empty()) f.emplace_back("ActionID", id);
    if (!message.empty()) f.emplace_back("Message", message);
    for (auto& e : extra) f.push_back(std::move(e));
    send(c, f);
  };
  if (action == "Challenge") {
    c.challenge = "8" + std::to_string(100000000 + next_id_++);
    reply("Success", "", {{"Challenge", c.challenge}});
    return;
  }
  if (action == "Login") {
    const bool ok =
        m.get("Username") == username_ &&
        (m.get("AuthType") == "MD5"
             ? !c.challenge.empty() && m.get("Key") == control::ami_md5_key(c.challenge, secret_)
             : m.get("Secret") == secret_);
    std::lock_guard lock(mu_);
    if (ok) {
      ++logins_;
      c.logged_in = true;
    } else {
      ++failed_logins_;
    }
    // (Asterisk closes the connection after a failed login.)
    reply(ok ? "Success" : "Error", ok ? "Authentication accepted" : "Authentication failed");
    if (!ok) {
      boost::system::error_code ec;
      c.socket.shutdown(tcp::socket::shutdown_both, ec);
    }
    return;
  }
  if (!c.logged_in) {
    reply("Error", "Permission denied");
    return;
  }
  const std::string channel(m.get("Channel"));
  bool known = false;
  {
    std::lock_guard lock(mu_);
    known = channels_.count(channel) != 0;
  }
  if (action == "Ping") {
    reply("Success", "", {{"Ping", "Pong"}, {"Timestamp", "1700000000.000000"}});
  } else if (action == "Redirect") {
    reply(known ? "Success" : "Error",
          known ? "Redirect successful" : "Channel specified does not exist");
  } else if (action == "Setvar") {
    reply(known ? "Success" : "Error", known ? "Variable Set" : "Channel not found");
  } else if (action == "PlayDTMF") {
    reply(known ? "Success" : "Error", known ? "DTMF successfully queued" : "Channel not found");
  } else if (action == "Hangup") {
    reply(known ? "Success" : "Error", known ? "Channel Hungup" : "No such channel");
  } else if (action == "Originate") {
    reply("Success", "Originate successfully queued");
    const int reason = originate_reason_;
    control::AmiFields ev{{"Event", "OriginateResponse"},
                          {"Privilege", "call,all"},
                          {"ActionID", id},
                          {"Response", reason == 4 ? "Success" : "Failure"},
                          {"Channel", std::string(m.get("Channel"))},
                          {"Context", std::string(m.get("Context"))},
                          {"Exten", std::string(m.get("Exten"))},
                          {"Reason", std::to_string(reason)},
                          {"Uniqueid", reason == 4 ? "1700000100.1" : "<unknown>"}};
    send(c, ev);
  } else {
    reply("Error", "Invalid/unknown command");
  }
}

void FakeAmi::emit(const control::AmiFields& fields) {
  std::vector<std::shared_ptr<Conn>> conns;
  {
    std::lock_guard lock(mu_);
    conns = conns_;
  }
  for (auto& c : conns) {
    if (c->logged_in) send(*c, fields);
  }
}

std::string FakeAmi::add_channel(const std::string& name, const std::string& uuid,
                                 const std::string& caller_number, const std::string& exten,
                                 const std::map<std::string, std::string>& vars,
                                 const std::string& uuid_variable) {
  std::string uniqueid;
  {
    std::lock_guard lock(mu_);
    uniqueid = "1700000000." + std::to_string(++next_id_);
    channels_[name] = uniqueid;
  }
  auto base = [&](const std::string& event) {
    return control::AmiFields{{"Event", event},
                              {"Privilege", "dialplan,all"},
                              {"Channel", name},
                              {"ChannelState", "6"},
                              {"ChannelStateDesc", "Up"},
                              {"CallerIDNum", caller_number},
                              {"CallerIDName", "<unknown>"},
                              {"Context", "voxbridge-app"},
                              {"Exten", exten},
                              {"Priority", "1"},
                              {"Uniqueid", uniqueid},
                              {"Linkedid", uniqueid}};
  };
  emit(base("Newchannel"));
  for (const auto& [k, v] : vars) {
    auto f = base("VarSet");
    f.emplace_back("Variable", k);
    f.emplace_back("Value", v);
    emit(f);
  }
  auto f = base("VarSet");
  f.emplace_back("Variable", uuid_variable);
  f.emplace_back("Value", uuid);
  emit(f);
  return uniqueid;
}

void FakeAmi::hangup_channel(const std::string& name) {
  std::string uniqueid;
  {
    std::lock_guard lock(mu_);
    auto it = channels_.find(name);
    if (it == channels_.end()) return;
    uniqueid = it->second;
    channels_.erase(it);
  }
  emit({{"Event", "Hangup"},
        {"Privilege", "call,all"},
        {"Channel", name},
        {"Uniqueid", uniqueid},
        {"Cause", "16"},
        {"Cause-txt", "Normal Clearing"}});
}

void FakeAmi::drop_connections() {
  std::lock_guard lock(mu_);
  for (auto& c : conns_) {
    boost::system::error_code ec;
    c->socket.shutdown(tcp::socket::shutdown_both, ec);
  }
  conns_.clear();
}

std::vector<control::AmiMessage> FakeAmi::actions() const {
  std::lock_guard lock(mu_);
  return actions_;
}

bool FakeAmi::wait_for_action(const std::string& name, std::chrono::milliseconds timeout,
                              control::AmiMessage* out, std::size_t skip) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    std::size_t seen = 0;
    for (const auto& a : actions_) {
      if (a.get("Action") != name) continue;
      if (seen++ < skip) continue;
      if (out != nullptr) *out = a;
      return true;
    }
    return false;
  });
}

int FakeAmi::logins() const {
  std::lock_guard lock(mu_);
  return logins_;
}

int FakeAmi::failed_logins() const {
  std::lock_guard lock(mu_);
  return failed_logins_;
}

}  // namespace voxbridge::testing
