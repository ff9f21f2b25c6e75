// libFuzzer target for what OpenAI Realtime sends a call (untrusted JSON from a service voxbridge
// does not control): one realtime_openai::Conversation per input, driven the way the backend
// drives it, with the call's own events mixed in so that truncation, tool calls, hang-ups and
// usage are reached.
//
// Input: the first byte picks the call (bit 0: a mu-law 8 kHz leg or LINEAR16 16 kHz; bit 1:
// tools off; bit 2: a token cap of 100; bit 3: no greeting; bit 4: a caller name that is not
// UTF-8, as a SIP display name can be). The rest is split at '\n' into
// lines. A line that starts with '!' is something from the call (numbers are decimal):
//   !M<n>        mark_played n            !C<mark> <ms>  playback_cleared
//   !A<k><ok>    action_result of kind k (t transfer, h hangup, d send_dtmf, v set_variable),
//                ok when <ok> is '1'
//   !D<digits>   dtmf                     !U<n>          n bytes of caller audio (at most 8000)
//   !X           the socket broke         !O             it opened again
//   !E           end_call (a cap)
// any other line is one server event. The run stops at the first fatal verdict, as the backend
// does.
// Checks: no crash or sanitizer report; a fatal verdict says why; every client event is one JSON
// object with a string type (so valid UTF-8); every Mark id is new and larger than the ones
// before. UBSan reports stop the run (halt_on_error), as ASan's do.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "voxbridge/realtime_openai/conversation.hpp"

namespace json = boost::json;
using namespace voxbridge;
using realtime_openai::Conversation;

namespace {

std::uint64_t number(std::string_view& s) {
  std::uint64_t n = 0;
  while (!s.empty() && s.front() >= '0' && s.front() <= '9') {
    n = n > UINT64_MAX / 10 ? UINT64_MAX : n * 10 + static_cast<std::uint64_t>(s.front() - '0');
    s.remove_prefix(1);
  }
  if (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return n;
}

agent::v1::AgentConfig call_config(bool linear, bool bad_name) {
  agent::v1::AgentConfig c;
  c.mutable_call()->set_call_id("7e2d5a8c-0000-4000-8000-000000000001");
  c.mutable_call()->set_caller_number("+15551234567");
  c.mutable_call()->set_called_number("5551000");
  if (bad_name) c.mutable_call()->set_caller_name("J\xc3\xa9r\xf4me \xff\xc3");
  (*c.mutable_call()->mutable_metadata())["VB_ACCOUNT"] = "gold";
  const auto enc = linear ? common::v1::LINEAR16 : common::v1::MULAW;
  const std::uint32_t rate = linear ? 16000 : 8000;
  c.mutable_input_format()->set_encoding(enc);
  c.mutable_input_format()->set_sample_rate_hz(rate);
  c.mutable_output_format()->set_encoding(enc);
  c.mutable_output_format()->set_sample_rate_hz(rate);
  return c;
}

void call_line(Conversation& conv, std::string_view s) {
  if (s.empty()) return;
  const char op = s.front();
  s.remove_prefix(1);
  agent::v1::CallEvent ev;
  switch (op) {
    case 'M':
      ev.set_mark_played(number(s));
      break;
    case 'C': {
      const std::uint64_t mark = number(s);
      const std::uint64_t ms = number(s);
      ev.mutable_playback_cleared()->set_mark_id(mark);
      ev.mutable_playback_cleared()->set_played_ms(static_cast<std::uint32_t>(ms));
      break;
    }
    case 'A': {
      auto* r = ev.mutable_action_result();
      const char kind = s.empty() ? 't' : s.front();
      if (kind == 'h') r->mutable_action()->mutable_hangup()->set_reason("done");
      if (kind == 'd') r->mutable_action()->mutable_send_dtmf()->set_digits("1");
      if (kind == 'v') r->mutable_action()->mutable_set_variable()->set_name("x");
      if (kind == 't') r->mutable_action()->mutable_transfer()->set_target("200");
      r->set_ok(s.size() > 1 && s[1] == '1');
      if (!r->ok()) r->set_error(std::string(s.substr(std::min<std::size_t>(s.size(), 2))));
      break;
    }
    case 'D':
      ev.set_dtmf(std::string(s));
      break;
    case 'U': {
      const std::size_t n = std::min<std::uint64_t>(number(s), 8000);
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
  auto o = std::make_shared<realtime_openai::RealtimeOptions>();
  o->instructions = "Caller {caller_name} {caller_number} ({VB_ACCOUNT}) called {called_number}.";
  o->tools = (flags & 2) == 0;
  if ((flags & 4) != 0) o->max_call_tokens = 100;
  o->greeting = (flags & 8) == 0;

  std::uint64_t last_mark = 0;
  Conversation::Sink sink{[](std::string j) {
                            boost::system::error_code ec;
                            const json::value v = json::parse(j, ec);
                            if (ec || !v.is_object()) std::abort();
                            const auto* t = v.as_object().if_contains("type");
                            if (t == nullptr || !t->is_string()) std::abort();
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
