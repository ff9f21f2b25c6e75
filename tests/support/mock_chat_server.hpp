// A local stand-in for an OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp) that
// speaks the real wire format (https://platform.openai.com/docs/api-reference/chat-streaming):
// POST /v1/chat/completions answered with a chunked text/event-stream of `data: {...}` lines and
// `data: [DONE]`, or an HTTP error, or a stream that stalls, or (hostile) a flood of bytes
// after the events. Serves one connection at a time on its own thread.
//
// Function calling as OpenAI's reference has it
// (https://platform.openai.com/docs/guides/function-calling,
// https://platform.openai.com/docs/api-reference/chat/create): streamed tool calls are deltas
// of `tool_calls` [{index, id, type "function", function {name, arguments}}], the id and name in
// a call's first delta only (tool_call()); the request's messages are checked as the API
// checks them, and a breach is answered 400 with OpenAI's error body (type
// invalid_request_error; the texts are the service's as reported in public threads,
// https://github.com/smallmain/vscode-unify-chat-provider/issues/248,
// https://github.com/itmisx/deepx-code/issues/94): an assistant message with tool_calls not
// followed by one `tool` message per id, a `tool` message answering no preceding call, a tool
// call or tool message missing its fields, a `tools` entry that is not a function.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace voxbridge::testing {

class MockChatServer {
 public:
  struct Event {
    std::string data;  ///< the JSON after "data: " (or "[DONE]")
    int delay_ms = 0;  ///< wait before sending it
  };
  struct Script {
    int status = 200;
    std::string error_body;     ///< body of a non-200 answer
    std::vector<Event> events;  ///< of a 200 answer, in order
    bool stall = false;         ///< after the events, send nothing more (no end chunk)
    /// Hostile: after the events, `flood` repeated to `flood_bytes` (in 64 KiB HTTP chunks, or
    /// until the client goes away), raw (no "data: " or line end added).
    std::string flood{};
    std::size_t flood_bytes = 0;
  };
  struct Request {
    std::string target, authorization, body;
  };

  /// With `tls`, HTTPS with a fresh self-signed certificate for "localhost" (see ca_file()).
  explicit MockChatServer(bool tls = false);
  ~MockChatServer();
  /// The script of every request once the queue (push_script) is empty.
  void set_script(Script s);
  /// Scripts for the next requests, one each, in order.
  void push_script(Script s);
  std::string base_url() const {
    return tls_ ? "https://localhost:" + std::to_string(port_) + "/v1"
                : "http://127.0.0.1:" + std::to_string(port_) + "/v1";
  }
  /// The certificate as a PEM file, the CA to trust (TLS only).
  std::string ca_file() const { return ca_file_; }
  std::vector<Request> requests() const;
  /// Bytes of the body written on the last connection (the events and the flood).
  std::size_t body_bytes_sent() const { return body_bytes_sent_; }

  /// A streamed text delta event ({"choices":[{"delta":{"content":TEXT}}]}).
  static Event text(const std::string& t, int delay_ms = 0);
  /// A streamed tool-call delta (name and/or a piece of the JSON arguments).
  static Event tool(int index, const std::string& name, const std::string& args_piece,
                    int delay_ms = 0);
  /// The first delta of tool call `index` as OpenAI streams it: its id, name and a first piece
  /// of the arguments (often "").
  static Event tool_call(int index, const std::string& id, const std::string& name,
                         const std::string& args_piece = "");
  static Event done() { return {"[DONE]", 0}; }
  /// The 400 body the API gives for `body` (the request), or "" when it would take it.
  static std::string check_request(const std::string& body);

 private:
  void serve();
  template <class Stream>
  void handle(boost::asio::ip::tcp::socket& raw, Stream& s);

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  bool tls_ = false;
  std::string cert_pem_, key_pem_, ca_file_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> body_bytes_sent_{0};
  mutable std::mutex mu_;
  Script script_;
  std::vector<Script> queue_;
  std::vector<Request> requests_;
  std::thread thread_;
};

}  // namespace voxbridge::testing
