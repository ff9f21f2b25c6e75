// libFuzzer target for what Gemini Live sends a call (untrusted JSON from a service voxbridge does
// not control): one realtime_gemini::Conversation per input, driven the way the backend drives
// it, with the call's own events mixed in so that tool calls and results, cancellations,
// resumption and hang-ups are reached.
//
// Input: the first byte picks the call (bit 0: the output at 16 kHz instead of 24 kHz; bit 1:
// action tools off; bit 2: a token cap of 100; bit 3: no greeting; bit 4: a caller name that is
// not UTF-8). The rest is split at '\n' into lines. A line that starts with '!' is something from
// the call: !A<id> an action result (ok when the line ends in '1') for the functionCall id,
// !T<id> a business tool's result, !D<digits> DTMF, !U<n> n bytes of caller audio (at most
// 8000), !X the socket broke, !O it opened again, !E end_call; any other line is one server
// message. The run stops at the first fatal verdict, as the backend does.
// Checks: no crash or sanitizer report; a fatal verdict says why; every client message is one
// JSON object with exactly one field (so valid UTF-8); every Mark id is new and larger.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "voxbridge/realtime_gemini/conversation.hpp"

namespace json = boost::json;
using namespace voxbridge;
using realtime_gemini::Conversation;

namespace {

agent::v1::AgentConfig call_config(bool out16k, bool bad_name) {
  agent::v1::AgentConfig c;
  c.mutable_call()->set_call_id("7e2d5a8c-0000-4000-8000-000000000001");
  c.mutable_call()->set_caller_number("+15551234567");
  if (bad_name) c.mutable_call()->set_caller_name("J\xc3\xa9r\xf4me \xff\xc3");
  c.mutable_input_format()->set_encoding(common::v1::LINEAR16);
  c.mutable_input_format()->set_sample_rate_hz(16000);
  c.mutable_output_format()->set_encoding(common::v1::LINEAR16);
  c.mutable_output_format()->set_sample_rate_hz(out16k ? 16000 : 24000);
  auto* t = c.add_tools();
  t->set_name("order_status");
  t->set_description("Look up an order.");
  t->set_parameters_json(R"({"type":"object","properties":{"order":{"type":"string"}}})");
  return c;
}

void call_line(Conversation& conv, std::string_view s) {
  if (s.empty()) return;
  const char op = s.front();
  s.remove_prefix(1);
  agent::v1::CallEvent ev;
  switch (op) {
    case 'A': {
      auto* r = ev.mutable_action_result();
      r->mutable_action()->mutable_transfer()->set_target("200");
      r->mutable_action()->set_tool_call_id(std::string(s));
      r->set_ok(!s.empty() && s.back() == '1');
      if (!r->ok()) r->set_error(std::string(s));
      break;
    }
    case 'T': {
      auto* r = ev.mutable_tool_result();
      r->set_id(std::string(s));
      r->set_name("order_status");
      r->set_ok(!s.empty() && s.back() == '1');
      r->set_output(std::string(s));
      break;
    }
    case 'D':
      ev.set_dtmf(std::string(s));
      break;
    case 'U': {
      std::size_t n = 0;
      for (char c : s) {
        if (c < '0' || c > '9') break;
        n = std::min<std::size_t>(n * 10 + static_cast<std::size_t>(c - '0'), 8000);
      }
      std::string audio(n, '\0');
      for (std::size_t i = 0; i < n; ++i) audio[i] = static_cast<char>(i * 37 + 11);
      conv.caller_audio(audio);
      return;
    }
    case 'X':
      conv.disconnected();
      return;
    case 'O':
      conv.opened();
      return;
    case 'E':
      conv.end_call("a cap");
      return;
    default:
      return;
  }
  conv.call_event(ev);
}

}  // namespace

extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  auto o = std::make_shared<realtime_gemini::GeminiOptions>();
  o->instructions = "Caller {caller_name} {caller_number}.";
  o->tools = (flags & 2) == 0;
  if ((flags & 4) != 0) o->max_call_tokens = 100;
  o->greeting = (flags & 8) == 0;

  std::uint64_t last_mark = 0;
  Conversation::Sink sink{[](std::string j) {
                            boost::system::error_code ec;
                            const json::value v = json::parse(j, ec);
                            if (ec || !v.is_object() || v.as_object().size() != 1) std::abort();
                          },
                          [&](agent::v1::AgentResponse r) {
                            if (r.has_mark()) {
                              if (r.mark().id() <= last_mark) std::abort();
                              last_mark = r.mark().id();
                            }
                          }};
  Conversation conv(o, call_config((flags & 1) != 0, (flags & 16) != 0), 2, std::move(sink));
  conv.opened();

  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  while (!in.empty()) {
    const std::size_t end = in.find('\n');
    const std::string_view line = in.substr(0, end);
    in.remove_prefix(end == std::string_view::npos ? in.size() : end + 1);
    if (!line.empty() && line.front() == '!') {
      call_line(conv, line.substr(1));
      continue;
    }
    std::string why;
    if (conv.server_event(line, why) == Conversation::Verdict::fatal) {
      if (why.empty()) std::abort();
      break;
    }
  }
  return 0;
}
