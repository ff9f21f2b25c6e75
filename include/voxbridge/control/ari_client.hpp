// A client of the Asterisk REST Interface: the events WebSocket of one Stasis application
// (basic auth; net::Reconnector reconnects it with capped exponential backoff and jitter, which
// also resubscribes) and REST requests over one keep-alive HTTP connection, each with its own
// timeout. An answer other than 2xx becomes an error that carries the status and Asterisk's
// message. An https:// url puts both on TLS (https and wss): SNI, the certificate checked
// against the url's host.
//
// Threads: everything runs on the executor given at creation (the control thread); request()
// must be called there, and handlers run there.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "voxbridge/control/options.hpp"

namespace voxbridge::control {

struct AriResponse {
  int status = 0;     ///< HTTP status; 0 = no answer (connection, timeout)
  std::string error;  ///< empty on 2xx; else "409 Conflict: Channel not in Stasis application"
  boost::json::value body;
  bool ok() const { return error.empty(); }
};

class AriClient : public std::enable_shared_from_this<AriClient> {
 public:
  using EventHandler = std::function<void(const boost::json::object&)>;
  using StateHandler = std::function<void(bool up, std::string_view why)>;
  using ResponseHandler = std::function<void(AriResponse)>;

  static std::shared_ptr<AriClient> create(boost::asio::any_io_executor ex, AriOptions options);
  ~AriClient();

  void on_event(EventHandler h);
  /// The events WebSocket came up (subscribed) or went down.
  void on_state(StateHandler h);
  void start();
  void stop();
  bool connected() const;

  /// One REST request: `method` "GET", "POST", "DELETE", `path` below /ari with its query
  /// ("/channels/ID/answer"), `body` JSON or empty.
  void request(std::string method, std::string path, std::string body, ResponseHandler done);

  // The REST calls voxbridge makes (paths per Asterisk's ARI reference).
  void answer(const std::string& channel, ResponseHandler done);
  void hangup(const std::string& channel, const std::string& reason, ResponseHandler done);
  void play(const std::string& channel, const std::string& media, ResponseHandler done);
  void dtmf(const std::string& channel, const std::string& digits, int duration_ms,
            ResponseHandler done);
  void hold(const std::string& channel, bool on, ResponseHandler done);
  /// POST /channels/{id}/moh?mohClass=CLASS (start) or DELETE /channels/{id}/moh (stop).
  void music_on_hold(const std::string& channel, bool on, const std::string& moh_class,
                     ResponseHandler done);
  void ring(const std::string& channel, ResponseHandler done);
  void continue_in_dialplan(const std::string& channel, const std::string& context,
                            const std::string& exten, int priority, ResponseHandler done);
  void redirect(const std::string& channel, const std::string& endpoint, ResponseHandler done);
  void get_variable(const std::string& channel, const std::string& name, ResponseHandler done);
  void set_variable(const std::string& channel, const std::string& name, const std::string& value,
                    ResponseHandler done);
  /// Originates `endpoint` into this Stasis app (appArgs) or a dialplan context.
  void originate(const std::map<std::string, std::string>& params,
                 const std::map<std::string, std::string>& variables, ResponseHandler done);
  /// An AudioSocket leg to `host_port` (encapsulation=audiosocket, transport=tcp) carrying
  /// `uuid`, in this app.
  void external_media(const std::string& host_port, const std::string& uuid,
                      const std::string& format, ResponseHandler done);
  void create_bridge(ResponseHandler done);
  void add_to_bridge(const std::string& bridge, const std::string& channels, ResponseHandler done);
  void remove_from_bridge(const std::string& bridge, const std::string& channel,
                          ResponseHandler done);
  void destroy_bridge(const std::string& bridge, ResponseHandler done);

  struct Impl;

 private:
  AriClient(boost::asio::any_io_executor ex, AriOptions options);
  std::shared_ptr<Impl> impl_;
};

}  // namespace voxbridge::control
