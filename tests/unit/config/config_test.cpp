#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <set>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "voxbridge/config/config.hpp"

namespace voxbridge::config {
namespace {

using namespace std::chrono_literals;

std::string error_of(const std::string& text) {
  try {
    parse_config(text, "voxbridge.conf");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsWorkWithoutAFile) {
  const Config c = default_config();
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].host, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 5001);
  EXPECT_EQ(c.listeners[0].agent, "receptionist");  // the offline agent
  ASSERT_EQ(c.pipelines.count("receptionist"), 1u);
  {
    // The listener's agent talks to the built-in providers (the server then starts them).
    const auto& p = c.pipelines.at(c.listeners[0].agent);
    EXPECT_TRUE(p.asr.address == kBuiltinAddress || p.llm.address == kBuiltinAddress ||
                p.tts.address == kBuiltinAddress);
  }
  EXPECT_EQ(c.pipelines.at("receptionist").llm.address, kBuiltinAddress);
  ASSERT_EQ(c.rules.count("receptionist"), 1u);
  EXPECT_EQ(c.rules.at("receptionist").intents.size(), 4u);
  EXPECT_EQ(c.listeners[0].codec, session::CodecMode::auto_detect);
  EXPECT_EQ(c.general.internal_rate_hz, 16000);
  EXPECT_NE(c.find_agent("echo"), nullptr);
  EXPECT_NE(c.find_agent("playback"), nullptr);
}

TEST(Config, ByDefaultOnlyLoopbackMayConnectAndPerPeerLimitsAreOn) {
  const Config c = default_config();
  const auto& l = c.listeners.at(0);
  namespace ip = boost::asio::ip;
  EXPECT_TRUE(l.allow.contains(ip::make_address("127.0.0.1")));
  EXPECT_TRUE(l.allow.contains(ip::make_address("::1")));
  EXPECT_FALSE(l.allow.contains(ip::make_address("10.1.2.3")));
  EXPECT_FALSE(l.allow.contains(ip::make_address("192.168.1.20")));
  EXPECT_FALSE(l.allow.contains(ip::make_address("172.17.0.1")));
  EXPECT_FALSE(l.allow.contains(ip::make_address("fd00::5")));
  EXPECT_EQ(l.peer_limits.max_calls, 2048u);
  EXPECT_EQ(l.peer_limits.rate_per_second, 500);
  EXPECT_EQ(l.peer_limits.burst, 1000);
  // The line README and the sample show for a PBX elsewhere.
  const Config pbx =
      parse_config("[listener-main]\nallow = 127.0.0.0/8, ::1, 192.0.2.10\n", "voxbridge.conf");
  EXPECT_TRUE(pbx.listeners.at(0).allow.contains(ip::make_address("192.0.2.10")));
  EXPECT_FALSE(pbx.listeners.at(0).allow.contains(ip::make_address("192.0.2.11")));
}

TEST(Config, TheShippedSampleParsesToTheDefaults) {
  std::ifstream f(std::string(VB_SAMPLE_CONF));
  std::stringstream ss;
  ss << f.rdbuf();
  ASSERT_FALSE(ss.str().empty());
  const Config c = parse_config(ss.str(), "voxbridge.conf.sample");
  const Config d = default_config();
  EXPECT_EQ(c.general.threads, d.general.threads);
  EXPECT_EQ(c.listeners.at(0).allow.text(), d.listeners.at(0).allow.text());
  EXPECT_EQ(c.listeners.at(0).peer_limits.max_calls, d.listeners.at(0).peer_limits.max_calls);
  EXPECT_EQ(c.listeners.at(0).peer_limits.rate_per_second,
            d.listeners.at(0).peer_limits.rate_per_second);
  EXPECT_EQ(c.listeners.at(0).peer_limits.burst, d.listeners.at(0).peer_limits.burst);
  EXPECT_EQ(c.general.http_max_connections, d.general.http_max_connections);
  EXPECT_EQ(c.general.max_calls, d.general.max_calls);
  EXPECT_EQ(c.general.limits.max_payload_bytes, d.general.limits.max_payload_bytes);
  EXPECT_EQ(c.general.limits.idle_timeout, d.general.limits.idle_timeout);
  EXPECT_EQ(c.general.limits.handshake_timeout, d.general.limits.handshake_timeout);
  EXPECT_EQ(c.general.drain_timeout, d.general.drain_timeout);
  EXPECT_EQ(c.general.limits.send_buffer_bytes, d.general.limits.send_buffer_bytes);
  EXPECT_EQ(c.general.read_on_tick, d.general.read_on_tick);
  EXPECT_EQ(c.general.tick_alignment, d.general.tick_alignment);
  EXPECT_EQ(c.general.tick_alignment_margin, d.general.tick_alignment_margin);
  EXPECT_EQ(c.general.realtime_priority, d.general.realtime_priority);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].port, 5001);
  const auto* g = c.find_agent("greeting");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->type, agent::AgentSpec::Type::playback);
  EXPECT_EQ(c.find_agent("echo")->hangup_digit, '#');
}

TEST(Config, ParsesProvidersAndAPipelineAgent) {
  ::setenv("VB_TEST_API_KEY", "s3cret", 1);
  const Config c = parse_config(R"(
[provider-speech]
address = 10.0.0.5:50051
deadline_ms = 30000
[provider-brain]
address = llm.example.com:443
tls = yes
header = Authorization: Bearer ${VB_TEST_API_KEY}
[agent-bot]
type = pipeline
asr = speech
tts = speech
llm = brain
greeting = Thank you for calling.
endpoint_silence_ms = 500
barge_in_ms = 250
dtmf = collect
dtmf_terminator = *
asr_encoding = mulaw
asr_rate = 8000
vad_narrowband = no
[listener-main]
bind = 127.0.0.1:5001
agent = bot
)",
                                "t.conf");
  ASSERT_EQ(c.providers.size(), 3u);  // and the built-in one
  EXPECT_EQ(c.providers[0].name, "builtin");
  const auto& p = c.pipelines.at("bot");
  EXPECT_EQ(p.asr.address, "10.0.0.5:50051");
  EXPECT_EQ(p.asr.deadline, std::chrono::milliseconds(30000));
  EXPECT_EQ(p.tts.name, "speech");
  EXPECT_TRUE(p.llm.tls);
  ASSERT_EQ(p.llm.metadata.size(), 1u);
  EXPECT_EQ(p.llm.metadata[0].first, "authorization");
  EXPECT_EQ(p.llm.metadata[0].second, "Bearer s3cret");
  EXPECT_EQ(p.greeting, "Thank you for calling.");
  EXPECT_EQ(p.detector.end_silence_ms, std::chrono::milliseconds(500));
  EXPECT_EQ(p.barge_in_after, std::chrono::milliseconds(250));
  EXPECT_EQ(p.dtmf, pipeline::DtmfMode::collect);
  EXPECT_EQ(p.dtmf_terminator, '*');
  EXPECT_EQ(p.asr_encoding, pipeline::AsrEncoding::mulaw);
  EXPECT_EQ(p.asr_rate_hz, 8000);
  EXPECT_FALSE(p.vad.narrowband);
  EXPECT_EQ(c.find_agent("bot")->type, agent::AgentSpec::Type::pipeline);
}

TEST(Config, ParsesASpeechToSpeechAgent) {
  const Config c = parse_config(R"(
[provider-rt]
address = 127.0.0.1:50052
[agent-live]
type = s2s
provider = rt
input_rate = 24000
output_rate = 24000
option = voice: alloy
option = instructions: Be brief.
)",
                                "t.conf");
  const auto& s = c.speech_agents.at("live");
  EXPECT_EQ(s.agent.address, "127.0.0.1:50052");
  EXPECT_EQ(s.input_rate_hz, 24000);
  EXPECT_EQ(s.output_rate_hz, 24000);
  EXPECT_EQ(s.options.at("voice"), "alloy");
  EXPECT_EQ(s.options.at("instructions"), "Be brief.");
  EXPECT_EQ(s.leg_codec, std::nullopt);  // the backend's default
  EXPECT_TRUE(s.echo_gate);
  EXPECT_EQ(c.find_agent("live")->type, agent::AgentSpec::Type::speech);
  const Config g = parse_config(
      "[provider-rt]\naddress = h:1\n[agent-g]\ntype = s2s\nprovider = rt\nleg_codec = on\n"
      "echo_gate = off\n",
      "t.conf");
  EXPECT_EQ(g.speech_agents.at("g").leg_codec, std::optional<bool>(true));
  EXPECT_FALSE(g.speech_agents.at("g").echo_gate);
  EXPECT_EQ(parse_config("[provider-rt]\naddress = h:1\n[agent-g]\ntype = s2s\nprovider = "
                         "rt\nleg_codec = off\n",
                         "t.conf")
                .speech_agents.at("g")
                .leg_codec,
            std::optional<bool>(false));
  EXPECT_THROW(parse_config("[provider-rt]\naddress = h:1\n[agent-g]\ntype = s2s\nprovider = "
                            "rt\nleg_codec = maybe\n",
                            "t.conf"),
               ConfigError);
  // An s2s option on a pipeline agent is refused.
  EXPECT_THROW(parse_config("[agent-p]\ntype = pipeline\necho_gate = on\n", "t.conf"), ConfigError);
  EXPECT_THROW(parse_config("[agent-x]\ntype = s2s\n", "t.conf"), ConfigError);
  EXPECT_THROW(parse_config("[provider-p]\naddress = h:1\n[agent-x]\ntype = s2s\nprovider = "
                            "p\ngreeting = hi\n",
                            "t.conf"),
               ConfigError);
}

TEST(Config, ParsesRuleSetsAndTheirIntentsInFileOrder) {
  const Config c = parse_config(R"(
[intent-billing]
rules = desk
keywords = bill, Invoice , payment
dtmf = 3
reply = Billing is open until five.
[rules-desk]
fallback = Say billing or press 3.
no_input = Hello?
[intent-operator]
rules = desk
dtmf = 0
reply = Transferring you.
action = transfer 1000@from-internal
[agent-desk]
type = pipeline
asr = builtin
llm = builtin
tts = builtin
rules = desk
)",
                                "t.conf");
  const auto& r = c.rules.at("desk");
  EXPECT_EQ(r.fallback, "Say billing or press 3.");
  EXPECT_EQ(r.no_input, "Hello?");
  ASSERT_EQ(r.intents.size(), 2u);
  EXPECT_EQ(r.intents[0].name, "billing");
  EXPECT_EQ(r.intents[0].keywords, (std::vector<std::string>{"bill", "invoice", "payment"}));
  EXPECT_EQ(r.intents[0].dtmf, "3");
  EXPECT_EQ(r.intents[1].action, dialogue_rules::Intent::Action::transfer);
  EXPECT_EQ(r.intents[1].target, "1000");
  EXPECT_EQ(r.intents[1].context, "from-internal");
  EXPECT_EQ(c.rules.count("receptionist"), 1u);  // the built-in set is still there
  const auto& llm = c.pipelines.at("desk").llm;
  EXPECT_EQ(llm.address, kBuiltinAddress);
  ASSERT_EQ(llm.metadata.size(), 1u);
  EXPECT_EQ(llm.metadata[0], (std::pair<std::string, std::string>{"vb-rules", "desk"}));
}

TEST(Config, ParsesSeveralListenersAndAgents) {
  const Config c = parse_config(R"(
[general]
threads = 3
realtime_priority = 10
tick_alignment = yes
tick_alignment_margin_ms = 4
max_calls = 10     ; inline comment
idle_timeout_ms = 0
max_call_duration_s = 3600

[listener-app]
bind = 0.0.0.0:5001
codec = slin
agent = slow-echo

[listener-trunk]
bind = [::1]:5002
codec = auto
g711 => alaw

[agent-slow-echo]
type = echo
delay_ms = 500
drop_late = yes
hangup_digit = none
)",
                                "t.conf");
  EXPECT_EQ(c.general.threads, 3u);
  EXPECT_EQ(c.general.realtime_priority, 10);
  EXPECT_TRUE(c.general.tick_alignment);
  EXPECT_EQ(c.general.tick_alignment_margin, 4ms);
  EXPECT_EQ(c.general.max_calls, 10u);
  EXPECT_EQ(c.general.limits.idle_timeout, 0ms);
  EXPECT_EQ(c.general.limits.max_call_duration, 3600s);
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].name, "app");
  EXPECT_EQ(c.listeners[0].host, "0.0.0.0");
  EXPECT_EQ(c.listeners[0].codec, session::CodecMode::slin);
  EXPECT_EQ(c.listeners[1].host, "::1");
  EXPECT_EQ(c.listeners[1].port, 5002);
  EXPECT_EQ(c.listeners[1].g711, audio::G711Law::alaw);
  EXPECT_EQ(c.listeners[1].agent, "receptionist");  // the default
  const auto* a = c.find_agent("slow-echo");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->echo_delay, 500ms);
  EXPECT_TRUE(a->echo_drop_late);
  EXPECT_FALSE(c.find_agent("echo")->echo_drop_late);
  EXPECT_EQ(a->hangup_digit, '\0');
}

TEST(Config, ErrorsNameFileLineSectionAndOption) {
  EXPECT_EQ(error_of("[general]\n\nthreads = many\n"),
            "voxbridge.conf:3: [general] threads: 'many' is not a whole number");
  EXPECT_EQ(error_of("[listener-a]\ncodec = ulw\n"),
            "voxbridge.conf:2: [listener-a] codec: 'ulw' is not one of auto, slin, ulaw, alaw");
  EXPECT_EQ(error_of("[general]\nread_on_tick = sometimes\n").substr(0, 44),
            "voxbridge.conf:2: [general] read_on_tick: 's");
  EXPECT_EQ(error_of("[general]\nsend_buffer_bytes = -1\n"),
            "voxbridge.conf:2: [general] send_buffer_bytes: '-1' is out of range 0..16777216");
  EXPECT_EQ(error_of("[general]\nmax_payload_bytes = 70000\n"),
            "voxbridge.conf:2: [general] max_payload_bytes: '70000' is out of range 160..65535");
  EXPECT_EQ(error_of("[general]\ntick_alignment_margin_ms = 20\n"),
            "voxbridge.conf:2: [general] tick_alignment_margin_ms: '20' is out of range 0..15");
  EXPECT_EQ(error_of("[general]\nfrobnicate = 1\n"),
            "voxbridge.conf:2: [general] frobnicate: unknown option");
  EXPECT_EQ(error_of("[listener-a]\nbind = localhost\n"),
            "voxbridge.conf:2: [listener-a] bind: 'localhost' is not HOST:PORT (an IP address)");
  EXPECT_EQ(error_of("[general]\ninternal_rate = 22050\n"),
            "voxbridge.conf:2: [general] internal_rate: '22050' is not one of 8000, 12000, "
            "16000, 24000, 32000, 44100, 48000");
  EXPECT_EQ(error_of("threads = 1\n"), "voxbridge.conf:1: threads: option outside of any section");
  EXPECT_EQ(error_of("[bogus]\n"),
            "voxbridge.conf:1: [bogus] unknown section (expected general, listener-NAME, "
            "agent-NAME, provider-NAME, rules-NAME, intent-NAME, openai-NAME, realtime-NAME, "
            "gemini-NAME, deepgram-NAME, elevenlabs-NAME, transcription-NAME, speech-NAME, "
            "vosk-NAME, riva-NAME, tool-NAME, route-NAME, recording, webhook, control, ami or "
            "ari)");
  EXPECT_EQ(error_of("[intent-x]\nrules = nope\nkeywords = a\n"),
            "voxbridge.conf:1: [intent-x] rules: no [rules-nope] section");
  EXPECT_EQ(error_of("[rules-r]\n[intent-x]\nrules = r\n"),
            "voxbridge.conf:2: [intent-x] needs keywords or dtmf to be chosen");
  EXPECT_EQ(error_of("[rules-r]\n[intent-x]\nrules = r\ndtmf = 1\naction = dial 100\n"),
            "voxbridge.conf:5: [intent-x] action: 'dial 100' is not none, hangup, transfer "
            "EXTEN[@CONTEXT], dtmf DIGITS or set NAME=VALUE");
  EXPECT_EQ(error_of("[control]\nmode = sip\n"),
            "voxbridge.conf:2: [control] mode: 'sip' is not none, ami or ari");
  EXPECT_EQ(error_of("[control]\nallow_numbers = _NXX, _1[2-\n"),
            "voxbridge.conf:2: [control] allow_numbers: '[' without ']' in _1[2-");
  EXPECT_EQ(error_of("[control]\nmode = ami\n[ami]\nusername = vb\n"),
            "voxbridge.conf: [ami] mode = ami needs username and secret");
  EXPECT_EQ(error_of("[ari]\nusername = vb\npassword = x\n"),
            "voxbridge.conf: [control] mode: [ami] or [ari] is configured but [control] mode is "
            "none (set mode = ami or ari)");
  EXPECT_EQ(error_of("[control]\noriginate_channel = PJSIP/trunk\n"),
            "voxbridge.conf:2: [control] originate_channel: must contain ${NUMBER}");
  EXPECT_EQ(error_of("[agent-bot]\ntype = pipeline\nasr = builtin\nllm = builtin\ntts = "
                     "builtin\nrules = nope\n"),
            "voxbridge.conf:6: [agent-bot] rules: no [rules-nope] section");
  EXPECT_EQ(error_of("[agent-bot]\ntype = pipeline\nasr = nowhere\nllm = x\ntts = x\n"),
            "voxbridge.conf: [agent-bot] asr: no [provider-nowhere] section");
  EXPECT_EQ(error_of("[provider-p]\naddress = h:1\n[agent-bot]\ntype = pipeline\nasr = p\n"),
            "voxbridge.conf: [agent-bot] llm: missing: name a [provider-NAME] section");
  EXPECT_EQ(error_of("[agent-bot]\ntype = pipeline\nasr_encoding = flac\n"),
            "voxbridge.conf:3: [agent-bot] asr_encoding: 'flac' is not linear16, mulaw or opus");
  EXPECT_EQ(error_of("[agent-e]\ntype = echo\nbarge_in_ms = 200\n"),
            "voxbridge.conf:3: [agent-e] barge_in_ms: only applies to type = pipeline");
  EXPECT_EQ(error_of("[provider-p]\naddress = h:1\nheader = x-api-key: ${VB_SURELY_UNSET_9}\n"),
            "voxbridge.conf:3: [provider-p] header: environment variable VB_SURELY_UNSET_9 is not "
            "set");
  EXPECT_EQ(error_of("[provider-p]\ntls = yes\n"), "voxbridge.conf: [provider-p] address: missing");
  EXPECT_EQ(error_of("[agent-bot]\ndtmf = sometimes\n"),
            "voxbridge.conf:2: [agent-bot] dtmf: 'sometimes' is not event or collect");
  EXPECT_EQ(error_of("[general]\n[general]\n"),
            "voxbridge.conf:2: [general] section defined twice (first at line 1)");
  EXPECT_EQ(error_of("[agent-x]\nhangup_digit = 12\n"),
            "voxbridge.conf:2: [agent-x] hangup_digit: '12' is not one DTMF digit (0-9 * # A-D) "
            "or none");
  EXPECT_EQ(error_of("[listener-a]\nagent = nobody\n"),
            "voxbridge.conf: [listener-a] agent: no agent named 'nobody' (define [agent-nobody] "
            "or use receptionist / echo / playback / realtime / gemini)");
  EXPECT_EQ(
      error_of("[general]\nplayout_low_watermark_ms = 900\nplayout_high_watermark_ms = 500\n"),
      "voxbridge.conf: [general] playout_*_ms: need playout_low_watermark_ms <= "
      "playout_high_watermark_ms <= playout_buffer_ms");
}

TEST(CommandLine, FlagsOverrideTheFile) {
  const char* argv[] = {"voxbridge", "--listen",    "127.0.0.1:6000",      "--agent",
                        "playback",  "--threads=4", "--log-level",         "debug",
                        "--codec",   "ulaw",        "--realtime-priority", "5"};
  const CommandLine cl = parse_command_line(12, argv);
  Config c = default_config();
  apply_command_line(c, cl);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].port, 6000);
  EXPECT_EQ(c.listeners[0].agent, "playback");
  EXPECT_EQ(c.listeners[0].codec, session::CodecMode::ulaw);
  EXPECT_EQ(c.general.threads, 4u);
  EXPECT_EQ(c.general.realtime_priority, 5);
  EXPECT_EQ(c.general.log_level, "debug");
}

TEST(Config, ARealtimeSectionConfiguresAnInProcessSpeechAgent) {
  ::setenv("VB_TEST_REALTIME_KEY", "sk-test-123", 1);
  const Config c = parse_config(
      "[realtime-sales]\n"
      "api_key = ${VB_TEST_REALTIME_KEY}\n"
      "model = gpt-realtime-mini\n"
      "voice = cedar\n"
      "turn_detection = semantic_vad\n"
      "vad_eagerness = low\n"
      "instructions = You answer for Acme. The caller is {caller_number}.\n"
      "max_sessions = 20\n"
      "max_call_s = 600\n"
      "append_ms = 60\n"
      "[agent-bot]\ntype = s2s\nrealtime = sales\nfailure_transfer = 100@sales-queue\n"
      "[listener-main]\nagent = bot\n",
      "voxbridge.conf");
  const auto& o = c.realtime.at("sales");
  EXPECT_EQ(o.name, "sales");
  EXPECT_EQ(o.api_key, "sk-test-123");
  EXPECT_EQ(o.model, "gpt-realtime-mini");
  EXPECT_EQ(o.voice, "cedar");
  EXPECT_EQ(o.turn_detection, "semantic_vad");
  EXPECT_EQ(o.vad_eagerness, "low");
  EXPECT_EQ(o.max_sessions, 20u);
  EXPECT_EQ(o.max_call_duration, 600s);
  EXPECT_EQ(o.append_ms, 60);
  EXPECT_EQ(o.url, "wss://api.openai.com/v1/realtime");
  const auto& s = c.speech_agents.at("bot");
  EXPECT_EQ(s.agent.backend, "realtime:sales");
  EXPECT_EQ(s.agent.name, "sales");
  EXPECT_EQ(s.agent.address, "");
  EXPECT_EQ(s.input_rate_hz, 24000);  // the service's PCM rate, not resampled twice
  EXPECT_EQ(s.output_rate_hz, 24000);
  EXPECT_EQ(s.leg_codec, std::optional<bool>(true));  // G.711 legs speak their own codec
  EXPECT_EQ(s.failure_transfer, "100");
  EXPECT_EQ(s.failure_context, "sales-queue");
  ::unsetenv("VB_TEST_REALTIME_KEY");
}

TEST(Config, RealtimeKeysComeFromTheEnvironmentOrASecretFileOnly) {
  EXPECT_EQ(error_of("[realtime-x]\napi_key = sk-live-abc\n"),
            "voxbridge.conf:2: [realtime-x] api_key: give the key as ${NAME} (environment) or "
            "${file:PATH}, not in the file");
  EXPECT_EQ(error_of("[realtime-x]\nturn_detection = maybe\n"),
            "voxbridge.conf:2: [realtime-x] turn_detection: 'maybe' is not one of server_vad, "
            "semantic_vad, none");
  EXPECT_EQ(error_of("[realtime-x]\nurl = https://api.openai.com/v1/realtime\n"),
            "voxbridge.conf:2: [realtime-x] url: 'https://api.openai.com/v1/realtime' is not a "
            "wss:// (or ws://) URL");
  EXPECT_EQ(error_of("[agent-bot]\ntype = s2s\nfailure_transfer = 1,2\n"),
            "voxbridge.conf:3: [agent-bot] failure_transfer: '1,2' is not a number (only 0-9 * # "
            "and a leading +)");
  EXPECT_EQ(error_of("[agent-bot]\ntype = s2s\nrealtime = nope\n"),
            "voxbridge.conf: [agent-bot] realtime: no [realtime-nope] section");
  // The built-in `realtime` agent needs OPENAI_API_KEY once it is used, and only then.
  const char* saved = std::getenv("OPENAI_API_KEY");
  const std::string keep = saved != nullptr ? saved : "";
  ::unsetenv("OPENAI_API_KEY");
  EXPECT_EQ(error_of(""), "");
  EXPECT_EQ(error_of("[listener-main]\nagent = realtime\n"),
            "voxbridge.conf: [realtime-openai] api_key: no API key: set OPENAI_API_KEY or "
            "api_key = ${NAME} in [realtime-openai]");
  ::setenv("OPENAI_API_KEY", "sk-env", 1);
  const Config c = parse_config("[listener-main]\nagent = realtime\n", "voxbridge.conf");
  EXPECT_EQ(c.realtime.at("openai").api_key, "sk-env");
  EXPECT_EQ(c.realtime.at("openai").model, "gpt-realtime");
  EXPECT_EQ(c.speech_agents.at("realtime").agent.backend, "realtime:openai");
  if (saved != nullptr) {
    ::setenv("OPENAI_API_KEY", keep.c_str(), 1);
  } else {
    ::unsetenv("OPENAI_API_KEY");
  }
}

TEST(Config, AGeminiSectionConfiguresAnInProcessSpeechAgent) {
  ::setenv("VB_TEST_GEMINI_KEY", "AIza-test-123", 1);
  const Config c = parse_config(
      "[gemini-front]\n"
      "api_key = ${VB_TEST_GEMINI_KEY}\n"
      "api_key_in = query\n"
      "model = models/gemini-live-2.5-flash-preview\n"
      "voice = Kore\n"
      "language = de-DE\n"
      "vad_start_sensitivity = low\n"
      "vad_end_sensitivity = high\n"
      "vad_silence_ms = 800\n"
      "max_sessions = 20\n"
      "max_resumes = 3\n"
      "append_ms = 60\n"
      "[agent-bot]\ntype = s2s\ngemini = front\n"
      "[listener-main]\nagent = bot\n",
      "voxbridge.conf");
  const auto& o = c.gemini.at("front");
  EXPECT_EQ(o.name, "front");
  EXPECT_EQ(o.api_key, "AIza-test-123");
  EXPECT_TRUE(o.key_in_query);
  EXPECT_EQ(o.model, "models/gemini-live-2.5-flash-preview");
  EXPECT_EQ(o.voice, "Kore");
  EXPECT_EQ(o.language, "de-DE");
  EXPECT_EQ(o.vad_start_sensitivity, "START_SENSITIVITY_LOW");
  EXPECT_EQ(o.vad_end_sensitivity, "END_SENSITIVITY_HIGH");
  EXPECT_EQ(o.vad_silence_ms, 800);
  EXPECT_EQ(o.max_sessions, 20u);
  EXPECT_EQ(o.max_resumes, 3);
  EXPECT_EQ(o.append_ms, 60);
  const auto& s = c.speech_agents.at("bot");
  EXPECT_EQ(s.agent.backend, "gemini:front");
  EXPECT_EQ(s.agent.name, "front");
  EXPECT_EQ(s.input_rate_hz, 16000);   // the Live API's input rate
  EXPECT_EQ(s.output_rate_hz, 24000);  // and its output rate: neither resampled twice
  EXPECT_EQ(s.leg_codec, std::optional<bool>(false));  // PCM only
  ::unsetenv("VB_TEST_GEMINI_KEY");
}

TEST(Config, GeminiKeysComeFromTheEnvironmentOrASecretFileOnly) {
  EXPECT_EQ(error_of("[gemini-x]\napi_key = AIzaSyLiteral\n"),
            "voxbridge.conf:2: [gemini-x] api_key: give the key as ${NAME} (environment) or "
            "${file:PATH}, not in the file");
  EXPECT_EQ(error_of("[gemini-x]\nurl = https://generativelanguage.googleapis.com/ws\n"),
            "voxbridge.conf:2: [gemini-x] url: 'https://generativelanguage.googleapis.com/ws' is "
            "not a wss:// (or ws://) URL");
  EXPECT_EQ(error_of("[gemini-x]\nvad_end_sensitivity = medium\n"),
            "voxbridge.conf:2: [gemini-x] vad_end_sensitivity: 'medium' is not one of high, low");
  EXPECT_EQ(error_of("[agent-bot]\ntype = s2s\ngemini = nope\n"),
            "voxbridge.conf: [agent-bot] gemini: no [gemini-nope] section");
  EXPECT_EQ(error_of("[gemini-x]\n[agent-bot]\ntype = s2s\ngemini = x\nleg_codec = on\n"),
            "voxbridge.conf: [agent-bot] gemini: leg_codec: Gemini Live takes PCM only");
  // The built-in `gemini` agent needs GEMINI_API_KEY once it is used, and only then.
  const char* saved = std::getenv("GEMINI_API_KEY");
  const std::string keep = saved != nullptr ? saved : "";
  ::unsetenv("GEMINI_API_KEY");
  EXPECT_EQ(error_of(""), "");
  EXPECT_EQ(error_of("[listener-main]\nagent = gemini\n"),
            "voxbridge.conf: [gemini-google] api_key: no API key: set GEMINI_API_KEY or "
            "api_key = ${NAME} in [gemini-google]");
  ::setenv("GEMINI_API_KEY", "AIza-env", 1);
  const Config c = parse_config("[listener-main]\nagent = gemini\n", "voxbridge.conf");
  EXPECT_EQ(c.gemini.at("google").api_key, "AIza-env");
  EXPECT_EQ(c.speech_agents.at("gemini").agent.backend, "gemini:google");
  if (saved != nullptr) {
    ::setenv("GEMINI_API_KEY", keep.c_str(), 1);
  } else {
    ::unsetenv("GEMINI_API_KEY");
  }
}

TEST(Config, ADeepgramSectionIsAPipelinesRecognizerInProcess) {
  ::setenv("VB_TEST_DEEPGRAM_KEY", "dg-test-123", 1);
  const Config c = parse_config(
      "[deepgram-eu]\n"
      "url = wss://api.eu.deepgram.com/v1/listen\n"
      "api_key = ${VB_TEST_DEEPGRAM_KEY}\n"
      "model = nova-2-phonecall\n"
      "language = de\n"
      "endpointing_ms = 0\n"
      "utterance_end_ms = 1500\n"
      "smart_format = no\n"
      "vad_events = no\n"
      "keepalive_ms = 3000\n"
      "linger_ms = 10000\n"
      "finalize_timeout_ms = 800\n"
      "connect_timeout_ms = 2500\n"
      "ca_file = /etc/ssl/private-ca.pem\n"
      "threads = 2\n"
      "max_sessions = 40\n"
      "[agent-bot]\ntype = pipeline\nasr = eu\nllm = builtin\ntts = builtin\n"
      "[listener-main]\nagent = bot\n",
      "voxbridge.conf");
  const auto& o = c.deepgram.at("eu");
  EXPECT_EQ(o.name, "eu");
  EXPECT_EQ(o.url, "wss://api.eu.deepgram.com/v1/listen");
  EXPECT_EQ(o.api_key, "dg-test-123");
  EXPECT_EQ(o.model, "nova-2-phonecall");
  EXPECT_EQ(o.language, "de");
  EXPECT_EQ(o.endpointing.count(), 0);
  EXPECT_EQ(o.utterance_end.count(), 1500);
  EXPECT_FALSE(o.smart_format);
  EXPECT_FALSE(o.vad_events);
  EXPECT_EQ(o.keepalive.count(), 3000);
  EXPECT_EQ(o.linger.count(), 10000);
  EXPECT_EQ(o.finalize_timeout.count(), 800);
  EXPECT_EQ(o.connect_timeout.count(), 2500);
  EXPECT_EQ(o.ca_file, "/etc/ssl/private-ca.pem");
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.max_sessions, 40u);
  const auto& p = c.pipelines.at("bot");
  EXPECT_EQ(p.asr.backend, "deepgram:eu");
  EXPECT_EQ(p.asr.name, "eu");
  EXPECT_EQ(p.asr.address, "");
  EXPECT_EQ(p.llm.address, kBuiltinAddress);  // the others are where they were
  ::unsetenv("VB_TEST_DEEPGRAM_KEY");
}

TEST(Config, TranscriptionAndSpeechSectionsAreAPipelinesOpenAiCompatibleRecognizerAndVoice) {
  ::setenv("VB_TEST_OPENAI_KEY", "sk-test-9", 1);
  const Config c = parse_config(
      "[transcription-whisper]\n"
      "base_url = http://10.0.0.5:8000/v1\n"
      "api_key = ${VB_TEST_OPENAI_KEY}\n"
      "model = Systran/faster-whisper-small\n"
      "language = de\n"
      "prompt = Voxbridge, FreePBX\n"
      "stream = yes\n"
      "response_format = verbose_json\n"
      "no_speech_threshold = 0.5\n"
      "temperature = 0\n"
      "min_speech_ms = 300\n"
      "hallucinations = thank you, untertitel im auftrag des zdf\n"
      "hallucination_guard_ms = 1000\n"
      "max_utterance_ms = 20000\n"
      "connect_timeout_ms = 2000\n"
      "timeout_ms = 8000\n"
      "ca_file = /etc/ssl/private-ca.pem\n"
      "threads = 2\n"
      "max_sessions = 50\n"
      "max_idle = 4\n"
      "[speech-kokoro]\n"
      "base_url = http://10.0.0.5:8880/v1\n"
      "model = kokoro\n"
      "voice = af_heart\n"
      "instructions = Speak warmly.\n"
      "speed = 1.1\n"
      "sample_rate = 24000\n"
      "timeout_ms = 5000\n"
      "max_sessions = 60\n"
      "[agent-bot]\ntype = pipeline\nasr = whisper\nllm = builtin\ntts = kokoro\n"
      "[listener-main]\nagent = bot\n",
      "voxbridge.conf");
  const auto& t = c.transcription.at("whisper");
  EXPECT_EQ(t.name, "whisper");
  EXPECT_EQ(t.base_url, "http://10.0.0.5:8000/v1");
  EXPECT_EQ(t.api_key, "sk-test-9");
  EXPECT_EQ(t.model, "Systran/faster-whisper-small");
  EXPECT_EQ(t.language, "de");
  EXPECT_EQ(t.prompt, "Voxbridge, FreePBX");
  EXPECT_TRUE(t.stream);
  EXPECT_EQ(t.response_format, "verbose_json");
  EXPECT_DOUBLE_EQ(t.no_speech_threshold, 0.5);
  EXPECT_DOUBLE_EQ(t.temperature, 0);
  EXPECT_EQ(t.min_speech.count(), 300);
  EXPECT_EQ(t.hallucinations,
            (std::vector<std::string>{"thank you", "untertitel im auftrag des zdf"}));
  EXPECT_EQ(t.hallucination_guard.count(), 1000);
  EXPECT_EQ(t.max_utterance.count(), 20000);
  EXPECT_EQ(t.connect_timeout.count(), 2000);
  EXPECT_EQ(t.timeout.count(), 8000);
  EXPECT_EQ(t.ca_file, "/etc/ssl/private-ca.pem");
  EXPECT_EQ(t.threads, 2);
  EXPECT_EQ(t.max_sessions, 50u);
  EXPECT_EQ(t.max_idle, 4u);
  const auto& v = c.speech.at("kokoro");
  EXPECT_EQ(v.base_url, "http://10.0.0.5:8880/v1");
  EXPECT_EQ(v.api_key, "");
  EXPECT_EQ(v.model, "kokoro");
  EXPECT_EQ(v.voice, "af_heart");
  EXPECT_EQ(v.instructions, "Speak warmly.");
  EXPECT_DOUBLE_EQ(v.speed, 1.1);
  EXPECT_EQ(v.sample_rate, 24000);
  EXPECT_EQ(v.timeout.count(), 5000);
  EXPECT_EQ(v.max_sessions, 60u);
  const auto& p = c.pipelines.at("bot");
  EXPECT_EQ(p.asr.backend, "transcription:whisper");
  EXPECT_EQ(p.tts.backend, "speech:kokoro");
  EXPECT_EQ(p.llm.address, kBuiltinAddress);
  ::unsetenv("VB_TEST_OPENAI_KEY");
}

TEST(Config, TranscriptionAndSpeechRefuseLiteralKeysBadValuesAndSharedNames) {
  EXPECT_EQ(error_of("[transcription-x]\napi_key = sk-literal\n"),
            "voxbridge.conf:2: [transcription-x] api_key: give the key as ${NAME} (environment) "
            "or ${file:PATH}, not in the file");
  EXPECT_EQ(error_of("[speech-x]\nbase_url = ftp://host/v1\n")
                .rfind("voxbridge.conf:2: [speech-x] base_url:", 0),
            0u);
  EXPECT_EQ(error_of("[transcription-x]\nresponse_format = srt\n"),
            "voxbridge.conf:2: [transcription-x] response_format: 'srt' is not one of json, "
            "verbose_json");
  EXPECT_EQ(error_of("[speech-x]\nspeed = 0.1\n"),
            "voxbridge.conf:2: [speech-x] speed: 0.25 to 4.0 (0 = the agent's)");
  EXPECT_EQ(error_of("[speech-x]\nformat = mp3\n"),
            "voxbridge.conf:2: [speech-x] format: unknown option");
  EXPECT_EQ(error_of("[deepgram-x]\n[transcription-x]\n"
                     "[agent-bot]\ntype = pipeline\nasr = x\nllm = builtin\ntts = builtin\n"),
            "voxbridge.conf: [agent-bot] asr: both [deepgram-x] and [transcription-x]: rename one");
  EXPECT_EQ(error_of("[speech-x]\n[provider-x]\naddress = 127.0.0.1:1\n"
                     "[agent-bot]\ntype = pipeline\nasr = builtin\nllm = builtin\ntts = x\n"),
            "voxbridge.conf: [agent-bot] tts: both [provider-x] and [speech-x]: rename one");
  // A speech server used as a recognizer is no recognizer.
  EXPECT_EQ(error_of("[speech-x]\n"
                     "[agent-bot]\ntype = pipeline\nasr = x\nllm = builtin\ntts = builtin\n"),
            "voxbridge.conf: [agent-bot] asr: no [provider-x] section");
}

TEST(Config, VoskAndRivaAreServersByAddress) {
  const Config c = parse_config(
      "[vosk-v]\naddress = vosk.lan:5001\nend_on_final = no\n"
      "[riva-r]\naddress = riva.lan:50051\ntls = yes\nvoice = English-US.Male-1\n"
      "asr_function_id = f-asr\nphrase_boost = 4.5\n"
      "[agent-a]\ntype = pipeline\nasr = v\nllm = builtin\ntts = r\n"
      "[agent-b]\ntype = pipeline\nasr = r\nllm = builtin\ntts = builtin\n",
      "voxbridge.conf");
  EXPECT_EQ(c.pipelines.at("a").asr.backend, "vosk:v");
  EXPECT_EQ(c.pipelines.at("a").tts.backend, "riva:r");
  EXPECT_EQ(c.pipelines.at("b").asr.backend, "riva:r");
  EXPECT_FALSE(c.vosk.at("v").end_on_final);
  EXPECT_TRUE(c.riva.at("r").tls);
  EXPECT_EQ(c.riva.at("r").asr_function_id, "f-asr");
  EXPECT_FLOAT_EQ(c.riva.at("r").phrase_boost, 4.5f);
  EXPECT_EQ(error_of("[vosk-x]\naddress = vosk.lan\n"),
            "voxbridge.conf:2: [vosk-x] address: 'vosk.lan' is not HOST:PORT");
  EXPECT_EQ(error_of("[riva-x]\naddress = :50051\n"),
            "voxbridge.conf:2: [riva-x] address: ':50051' is not HOST:PORT");
  EXPECT_EQ(error_of("[riva-x]\napi_key = nvapi-literal\n"),
            "voxbridge.conf:2: [riva-x] api_key: give the key as ${NAME} (environment) or "
            "${file:PATH}, not in the file");
  EXPECT_EQ(error_of("[riva-x]\nphrase_boost = lots\n"),
            "voxbridge.conf:2: [riva-x] phrase_boost: 'lots' is not 0 to 100");
  EXPECT_EQ(error_of("[vosk-x]\nvoice = a\n")
                .rfind("voxbridge.conf:2: [vosk-x] voice: unknown option", 0),
            0u);
  EXPECT_EQ(error_of("[vosk-x]\n[riva-x]\n"
                     "[agent-bot]\ntype = pipeline\nasr = x\nllm = builtin\ntts = builtin\n"),
            "voxbridge.conf: [agent-bot] asr: both [vosk-x] and [riva-x]: rename one");
  // Vosk recognizes only: as a voice it is no voice.
  EXPECT_EQ(error_of("[vosk-x]\n"
                     "[agent-bot]\ntype = pipeline\nasr = builtin\nllm = builtin\ntts = x\n"),
            "voxbridge.conf: [agent-bot] tts: no [provider-x] section");
}

TEST(Config, DeepgramKeysComeFromTheEnvironmentAndNamesAreNotAmbiguous) {
  EXPECT_EQ(error_of("[deepgram-x]\napi_key = dg-literal\n"),
            "voxbridge.conf:2: [deepgram-x] api_key: give the key as ${NAME} (environment) or "
            "${file:PATH}, not in the file");
  EXPECT_EQ(error_of("[deepgram-x]\nurl = https://api.deepgram.com/v1/listen\n"),
            "voxbridge.conf:2: [deepgram-x] url: 'https://api.deepgram.com/v1/listen' is not a "
            "wss:// (or ws://) URL");
  EXPECT_EQ(error_of("[deepgram-x]\nurl = wss://api.deepgram.com/v1/listen?model=nova-3\n"),
            "voxbridge.conf:2: [deepgram-x] url: 'wss://api.deepgram.com/v1/listen?model=nova-3': "
            "the options have keys of their own");
  EXPECT_EQ(error_of("[deepgram-x]\nutterance_end_ms = 500\n"),
            "voxbridge.conf:2: [deepgram-x] utterance_end_ms: Deepgram takes 1000 ms or more (0 = "
            "off)");
  EXPECT_EQ(error_of("[deepgram-x]\nkeepalive_ms = 10000\n"),
            "voxbridge.conf:2: [deepgram-x] keepalive_ms: '10000' is out of range 500..9000");
  EXPECT_EQ(error_of("[deepgram-x]\nbeam = 3\n"),
            "voxbridge.conf:2: [deepgram-x] beam: unknown option");
  EXPECT_EQ(error_of("[deepgram-x]\n[provider-x]\naddress = 127.0.0.1:1\n"
                     "[agent-bot]\ntype = pipeline\nasr = x\nllm = builtin\ntts = builtin\n"),
            "voxbridge.conf: [agent-bot] asr: both [provider-x] and [deepgram-x]: rename one");
  // `asr = deepgram` is the defaults, which need DEEPGRAM_API_KEY once the agent is used.
  const char* saved = std::getenv("DEEPGRAM_API_KEY");
  const std::string keep = saved != nullptr ? saved : "";
  ::unsetenv("DEEPGRAM_API_KEY");
  const std::string agent =
      "[agent-bot]\ntype = pipeline\nasr = deepgram\nllm = builtin\ntts = builtin\n";
  EXPECT_EQ(error_of(agent), "");
  EXPECT_EQ(error_of(agent + "[listener-main]\nagent = bot\n"),
            "voxbridge.conf: [deepgram-deepgram] api_key: no API key: set DEEPGRAM_API_KEY or "
            "api_key = ${NAME} in [deepgram-deepgram]");
  ::setenv("DEEPGRAM_API_KEY", "dg-env", 1);
  const Config c = parse_config(agent + "[listener-main]\nagent = bot\n", "voxbridge.conf");
  EXPECT_EQ(c.deepgram.at("deepgram").api_key, "dg-env");
  EXPECT_EQ(c.deepgram.at("deepgram").model, "nova-3");
  EXPECT_EQ(c.pipelines.at("bot").asr.backend, "deepgram:deepgram");
  if (saved != nullptr) {
    ::setenv("DEEPGRAM_API_KEY", keep.c_str(), 1);
  } else {
    ::unsetenv("DEEPGRAM_API_KEY");
  }
}

TEST(Config, AnElevenLabsSectionIsAPipelinesVoiceInProcess) {
  ::setenv("VB_TEST_ELEVENLABS_KEY", "el-test-123", 1);
  const Config c = parse_config(
      "[elevenlabs-rachel]\n"
      "url = wss://api.eu.residency.elevenlabs.io/v1/text-to-speech/\n"
      "api_key = ${VB_TEST_ELEVENLABS_KEY}\n"
      "voice_id = pNInz6obpgDQGcFmaJgB\n"
      "model_id = eleven_turbo_v2_5\n"
      "ulaw_8000 = no\n"
      "stability = 0.4\n"
      "similarity_boost = 0.9\n"
      "speed = 1.1\n"
      "first_chunk_chars = 80\n"
      "connect_timeout_ms = 3000\n"
      "ca_file = /etc/ssl/private-ca.pem\n"
      "threads = 2\n"
      "max_sessions = 30\n"
      "[agent-bot]\ntype = pipeline\nasr = builtin\nllm = builtin\ntts = rachel\n"
      "[listener-main]\nagent = bot\n",
      "voxbridge.conf");
  const auto& o = c.elevenlabs.at("rachel");
  EXPECT_EQ(o.name, "rachel");
  EXPECT_EQ(o.url, "wss://api.eu.residency.elevenlabs.io/v1/text-to-speech");
  EXPECT_EQ(o.api_key, "el-test-123");
  EXPECT_EQ(o.voice_id, "pNInz6obpgDQGcFmaJgB");
  EXPECT_EQ(o.model_id, "eleven_turbo_v2_5");
  EXPECT_FALSE(o.ulaw_8000);
  EXPECT_DOUBLE_EQ(o.stability, 0.4);
  EXPECT_DOUBLE_EQ(o.similarity_boost, 0.9);
  EXPECT_DOUBLE_EQ(o.speed, 1.1);
  EXPECT_EQ(o.first_chunk_chars, 80);
  EXPECT_EQ(o.connect_timeout.count(), 3000);
  EXPECT_EQ(o.ca_file, "/etc/ssl/private-ca.pem");
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.max_sessions, 30u);
  EXPECT_EQ(c.pipelines.at("bot").tts.backend, "elevenlabs:rachel");
  EXPECT_EQ(c.pipelines.at("bot").asr.address, kBuiltinAddress);
  ::unsetenv("VB_TEST_ELEVENLABS_KEY");
}

TEST(Config, ElevenLabsKeysComeFromTheEnvironment) {
  EXPECT_EQ(error_of("[elevenlabs-x]\napi_key = sk_literal\n"),
            "voxbridge.conf:2: [elevenlabs-x] api_key: give the key as ${NAME} (environment) or "
            "${file:PATH}, not in the file");
  EXPECT_EQ(error_of("[elevenlabs-x]\nstability = 2\n"),
            "voxbridge.conf:2: [elevenlabs-x] stability: '2' is not a number from 0 to 1.0");
  EXPECT_EQ(error_of("[elevenlabs-x]\n[provider-x]\naddress = 127.0.0.1:1\n"
                     "[agent-bot]\ntype = pipeline\nasr = builtin\nllm = builtin\ntts = x\n"),
            "voxbridge.conf: [agent-bot] tts: both [provider-x] and [elevenlabs-x]: rename one");
  const char* saved = std::getenv("ELEVENLABS_API_KEY");
  const std::string keep = saved != nullptr ? saved : "";
  ::unsetenv("ELEVENLABS_API_KEY");
  const std::string agent =
      "[agent-bot]\ntype = pipeline\nasr = builtin\nllm = builtin\ntts = elevenlabs\n";
  EXPECT_EQ(error_of(agent), "");
  EXPECT_EQ(error_of(agent + "[listener-main]\nagent = bot\n"),
            "voxbridge.conf: [elevenlabs-elevenlabs] api_key: no API key: set ELEVENLABS_API_KEY "
            "or api_key = ${NAME} in [elevenlabs-elevenlabs]");
  ::setenv("ELEVENLABS_API_KEY", "el-env", 1);
  const Config c = parse_config(agent + "[listener-main]\nagent = bot\n", "voxbridge.conf");
  EXPECT_EQ(c.elevenlabs.at("elevenlabs").api_key, "el-env");
  EXPECT_EQ(c.pipelines.at("bot").tts.backend, "elevenlabs:elevenlabs");
  if (saved != nullptr) {
    ::setenv("ELEVENLABS_API_KEY", keep.c_str(), 1);
  } else {
    ::unsetenv("ELEVENLABS_API_KEY");
  }
}

TEST(Config, EveryExampleConfigurationLoads) {
  // etc/examples/*.conf are what README's "Connect an AI service" points at: none may rot.
  ::setenv("OPENAI_API_KEY", "sk-example", 1);
  ::setenv("AZURE_OPENAI_API_KEY", "azure-example", 1);
  ::setenv("ORDERS_API_TOKEN", "orders-example", 1);
  ::setenv("GEMINI_API_KEY", "gemini-example", 1);
  ::setenv("DEEPGRAM_API_KEY", "deepgram-example", 1);
  ::setenv("ELEVENLABS_API_KEY", "elevenlabs-example", 1);
  std::size_t n = 0;
  for (const auto& f : std::filesystem::directory_iterator(VB_EXAMPLES_DIR)) {
    if (f.path().extension() != ".conf") continue;
    ++n;
    SCOPED_TRACE(f.path().string());
    EXPECT_NO_THROW(load_config_file(f.path().string()));
  }
  EXPECT_GE(n, 2u);
  const Config azure =
      load_config_file(std::string(VB_EXAMPLES_DIR) + "/azure-openai-realtime.conf");
  EXPECT_TRUE(azure.realtime.at("azure").azure);
  EXPECT_EQ(azure.realtime.at("azure").api_key, "azure-example");
  const Config openai = load_config_file(std::string(VB_EXAMPLES_DIR) + "/openai-realtime.conf");
  EXPECT_EQ(openai.realtime.at("openai").api_key, "sk-example");
  EXPECT_EQ(openai.speech_agents.at("front-desk").agent.backend, "realtime:openai");
  const Config gemini = load_config_file(std::string(VB_EXAMPLES_DIR) + "/gemini-live.conf");
  EXPECT_EQ(gemini.gemini.at("google").api_key, "gemini-example");
  EXPECT_EQ(gemini.speech_agents.at("front-desk").agent.backend, "gemini:google");
  const Config deepgram = load_config_file(std::string(VB_EXAMPLES_DIR) + "/deepgram.conf");
  EXPECT_EQ(deepgram.deepgram.at("deepgram").api_key, "deepgram-example");
  EXPECT_EQ(deepgram.pipelines.at("front-desk").asr.backend, "deepgram:deepgram");
  EXPECT_EQ(deepgram.pipelines.at("front-desk").asr_encoding, pipeline::AsrEncoding::mulaw);
  const Config eleven = load_config_file(std::string(VB_EXAMPLES_DIR) + "/elevenlabs.conf");
  EXPECT_EQ(eleven.elevenlabs.at("elevenlabs").api_key, "elevenlabs-example");
  EXPECT_EQ(eleven.pipelines.at("front-desk").tts.backend, "elevenlabs:elevenlabs");
  EXPECT_EQ(eleven.pipelines.at("front-desk").tts_rate_hz, 8000);
  const Config local =
      load_config_file(std::string(VB_EXAMPLES_DIR) + "/local-whisper-kokoro.conf");
  EXPECT_EQ(local.pipelines.at("front-desk").asr.backend, "transcription:whisper");
  EXPECT_EQ(local.pipelines.at("front-desk").tts.backend, "speech:kokoro");
  EXPECT_EQ(local.transcription.at("whisper").response_format, "verbose_json");
  EXPECT_EQ(local.speech.at("kokoro").api_key, "");
  const Config hosted = load_config_file(std::string(VB_EXAMPLES_DIR) + "/openai-speech.conf");
  EXPECT_EQ(hosted.transcription.at("openai-transcribe").api_key, "sk-example");
  EXPECT_TRUE(hosted.transcription.at("openai-transcribe").stream);
  EXPECT_EQ(hosted.speech.at("openai-voice").api_key, "sk-example");
  EXPECT_EQ(hosted.pipelines.at("front-desk").tts.backend, "speech:openai-voice");
  const Config vosk = load_config_file(std::string(VB_EXAMPLES_DIR) + "/vosk.conf");
  EXPECT_EQ(vosk.pipelines.at("front-desk").asr.backend, "vosk:vosk");
  EXPECT_EQ(vosk.vosk.at("vosk").address, "127.0.0.1:5001");
  EXPECT_EQ(vosk.vosk.at("vosk").max_sessions, 8u);
  const Config riva = load_config_file(std::string(VB_EXAMPLES_DIR) + "/riva.conf");
  EXPECT_EQ(riva.pipelines.at("front-desk").asr.backend, "riva:riva");
  EXPECT_EQ(riva.pipelines.at("front-desk").tts.backend, "riva:riva");
  EXPECT_EQ(riva.riva.at("riva").voice, "English-US.Female-1");
  EXPECT_EQ(riva.pipelines.at("front-desk").asr_encoding, pipeline::AsrEncoding::mulaw);
  ::unsetenv("DEEPGRAM_API_KEY");
  ::unsetenv("ELEVENLABS_API_KEY");
  ::unsetenv("OPENAI_API_KEY");
  ::unsetenv("AZURE_OPENAI_API_KEY");
  ::unsetenv("GEMINI_API_KEY");
}

TEST(CommandLine, RejectsBadFlagsClearly) {
  auto err = [](std::vector<const char*> args) {
    args.insert(args.begin(), "voxbridge");
    try {
      Config c = default_config();
      apply_command_line(c, parse_command_line(static_cast<int>(args.size()), args.data()));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(err({"--bogus"}), "--bogus: unknown option (see --help)");
  EXPECT_EQ(err({"--listen"}), "--listen: missing value");
  EXPECT_EQ(err({"--listen", "5001"}),
            "command line: --listen: '5001' is not HOST:PORT (an IP address)");
  EXPECT_EQ(err({"--agent", "nobody"}),
            "command line: --agent: no agent named 'nobody' (built-in: receptionist, echo, "
            "playback, realtime, gemini)");
  EXPECT_EQ(err({"--threads", "-1"}), "command line: --threads: '-1' is out of range 0..256");
  EXPECT_EQ(err({"--realtime-priority", "100"}),
            "command line: --realtime-priority: '100' is out of range 0..99");
  EXPECT_EQ(
      err({"--log-level", "loud"}),
      "command line: log_level: 'loud' is not one of trace, debug, info, warning, error, off");
}

TEST(CommandLine, HelpAndVersion) {
  const char* a[] = {"voxbridge", "--help"};
  EXPECT_TRUE(parse_command_line(2, a).help);
  const char* b[] = {"voxbridge", "--version"};
  EXPECT_TRUE(parse_command_line(2, b).version);
  EXPECT_NE(usage().find("--listen"), std::string::npos);
}

}  // namespace
}  // namespace voxbridge::config

namespace voxbridge::config {
namespace {

TEST(Config, ParsesTheControlPath) {
  setenv("VB_TEST_AMI_SECRET", "s3cret", 1);
  const Config c = parse_config(R"(
[control]
mode = ami
allow_contexts = from-internal, voxbridge-transfer
allow_extensions = _1XX, operator
allow_numbers = _NXXNXXXXXX
transfer_context = from-internal
originate_channel = PJSIP/${NUMBER}@trunk
max_outbound = 3
[ami]
host = 10.0.0.5
port = 5039
username = voxbridge
secret = ${VB_TEST_AMI_SECRET}
auth = plain
tls = yes
[rules-r]
[intent-press3]
rules = r
dtmf = 3
action = dtmf 42#
[intent-press4]
rules = r
dtmf = 4
action = set VB_RESULT=sales
)",
                                "voxbridge.conf");
  EXPECT_EQ(c.control.mode, control::ControlConfig::Mode::ami);
  EXPECT_EQ(c.control.allow.contexts,
            (std::vector<std::string>{"from-internal", "voxbridge-transfer"}));
  EXPECT_EQ(c.control.allow.extensions, (std::vector<std::string>{"_1XX", "operator"}));
  EXPECT_EQ(c.control.allow.numbers, (std::vector<std::string>{"_NXXNXXXXXX"}));
  EXPECT_EQ(c.control.transfer_context, "from-internal");
  EXPECT_EQ(c.control.originate_channel, "PJSIP/${NUMBER}@trunk");
  EXPECT_EQ(c.control.max_outbound, 3u);
  EXPECT_EQ(c.control.ami.host, "10.0.0.5");
  EXPECT_EQ(c.control.ami.port, "5039");
  EXPECT_EQ(c.control.ami.secret, "s3cret");
  EXPECT_FALSE(c.control.ami.md5);
  EXPECT_TRUE(c.control.ami.tls);
  const auto& intents = c.rules.at("r").intents;
  ASSERT_EQ(intents.size(), 2u);
  EXPECT_EQ(intents[0].action, dialogue_rules::Intent::Action::send_dtmf);
  EXPECT_EQ(intents[0].target, "42#");
  EXPECT_EQ(intents[1].action, dialogue_rules::Intent::Action::set_variable);
  EXPECT_EQ(intents[1].target, "VB_RESULT");
  EXPECT_EQ(intents[1].context, "sales");
}

}  // namespace
}  // namespace voxbridge::config

namespace voxbridge::config {
namespace {

TEST(Config, ParsesOperations) {
  ::setenv("VB_TEST_WEBHOOK_SECRET", "from-the-environment", 1);
  char path[] = "/tmp/vb-secret-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string secret = "token-from-a-file-0123456789\n";
  ASSERT_EQ(::write(fd, secret.data(), secret.size()), static_cast<ssize_t>(secret.size()));
  ::close(fd);
  const auto c = config::parse_config(
      std::string("[general]\nhttp_listen = 0.0.0.0:8081\nhttp_token = ${file:") + path +
          "}\n"
          "[listener-main]\nallow = 10.0.0.0/8 192.0.2.7\nmax_calls_per_peer = 50\n"
          "connect_rate = 20\nconnect_burst = 40\nrequire_registration = yes\n"
          "[agent-tone]\ntype = playback\n"
          "[route-vip]\nlistener = main\ncaller = _44X.\ncalled = 5551000\n"
          "variable = VB_AGENT=tone\nvariable = VB_TIER=_[12]\nagent = tone\nrecord = no\n"
          "[route-es]\nvariable = VB_LANGUAGE=es\nagent = receptionist\nlanguage = es-ES\n"
          "greeting = Hola.\ndtmf = collect\ndtmf_terminator = *\ndtmf_timeout_ms = 5000\n"
          "[recording]\ndirectory = /srv/rec\nrecord = no\ntranscript = no\nmax_age_days = 30\n"
          "max_total_mb = 2048\n"
          "[webhook]\nurl = https://hooks.example.com/vb\nsecret = ${VB_TEST_WEBHOOK_SECRET}\n"
          "events = call_ended, action\ntimeout_ms = 2000\nmax_attempts = 3\n",
      "voxbridge.conf");
  ::unlink(path);
  EXPECT_EQ(c.general.http_token, "token-from-a-file-0123456789");
  const auto& l = c.listeners.at(0);
  EXPECT_EQ(l.allow.text(), "10.0.0.0/8, 192.0.2.7/32");
  EXPECT_EQ(l.peer_limits.max_calls, 50u);
  EXPECT_EQ(l.peer_limits.rate_per_second, 20);
  EXPECT_EQ(l.peer_limits.burst, 40);
  EXPECT_TRUE(l.require_registration);
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].name, "vip");
  EXPECT_EQ(c.routes[0].listeners, std::vector<std::string>{"main"});
  EXPECT_EQ(c.routes[0].caller, "_44X.");
  EXPECT_EQ(c.routes[0].called, "5551000");
  ASSERT_EQ(c.routes[0].variables.size(), 2u);
  EXPECT_EQ(c.routes[0].variables[1], (std::pair<std::string, std::string>{"VB_TIER", "_[12]"}));
  EXPECT_EQ(c.routes[0].record, false);
  EXPECT_EQ(c.routes[1].language, "es-ES");
  EXPECT_EQ(c.routes[1].greeting, "Hola.");
  EXPECT_FALSE(c.routes[0].overrides_dtmf());
  EXPECT_EQ(c.routes[1].dtmf, pipeline::DtmfMode::collect);
  EXPECT_EQ(c.routes[1].dtmf_terminator, '*');
  EXPECT_EQ(c.routes[1].dtmf_timeout, std::chrono::milliseconds(5000));
  EXPECT_FALSE(c.routes[1].dtmf_max_digits.has_value());  // the agent's stays
  EXPECT_TRUE(c.recording.enabled);
  EXPECT_EQ(c.recording.directory, "/srv/rec");
  EXPECT_FALSE(c.recording.record);
  EXPECT_FALSE(c.recording.transcript);
  EXPECT_EQ(c.recording.max_age, std::chrono::hours(720));
  EXPECT_EQ(c.recording.max_total_bytes, 2048ull << 20);
  EXPECT_EQ(c.webhook.url, "https://hooks.example.com/vb");
  EXPECT_EQ(c.webhook.secret, "from-the-environment");
  EXPECT_EQ(c.webhook.events, (std::set<std::string>{"call_ended", "action"}));
  EXPECT_EQ(c.webhook.max_attempts, 3);
}

TEST(Config, OperationsMistakesAreNamed) {
  EXPECT_EQ(error_of("[general]\nhttp_listen = 0.0.0.0:8081\n"),
            "voxbridge.conf: [general] http_listen: '0.0.0.0:8081' is reachable from other "
            "hosts: set http_token (e.g. http_token = ${VOXBRIDGE_HTTP_TOKEN}) or bind to "
            "127.0.0.1");
  EXPECT_EQ(error_of("[general]\nhttp_token = short\n"),
            "voxbridge.conf:2: [general] http_token: too short: use at least 16 characters");
  EXPECT_EQ(error_of("[listener-a]\nallow = 10.0.0.0/40\n"),
            "voxbridge.conf:2: [listener-a] allow: '10.0.0.0/40': prefix must be 0..32");
  EXPECT_EQ(error_of("[route-r]\ncaller = _44X.\n"),
            "voxbridge.conf: [route-r] agent: missing: the agent this route chooses");
  EXPECT_EQ(error_of("[route-r]\nagent = nobody\n"),
            "voxbridge.conf: [route-r] agent: no agent named 'nobody'");
  EXPECT_EQ(error_of("[route-r]\nagent = echo\nlanguage = de\n"),
            "voxbridge.conf: [route-r] language: only a pipeline agent has a language and a "
            "greeting ('echo' has not)");
  EXPECT_EQ(error_of("[route-r]\nagent = echo\ndtmf = collect\n"),
            "voxbridge.conf: [route-r] dtmf: only a pipeline agent handles DTMF by these "
            "settings ('echo' is not one: an s2s agent gets every digit as an event)");
  EXPECT_EQ(error_of("[route-r]\nagent = receptionist\ndtmf_terminator = x\n"),
            "voxbridge.conf:3: [route-r] dtmf_terminator: 'x' is not a digit");
  EXPECT_EQ(error_of("[route-r]\nagent = receptionist\ncolour = red\n"),
            "voxbridge.conf:3: [route-r] colour: unknown option");
  EXPECT_EQ(error_of("[route-r]\nvariable = VB_AGENT\n"),
            "voxbridge.conf:2: [route-r] variable: 'VB_AGENT' is not NAME=PATTERN");
  EXPECT_EQ(error_of("[route-r]\nagent = echo\nlistener = nope\n"),
            "voxbridge.conf: [route-r] listener: no [listener-nope]");
  EXPECT_EQ(error_of("[provider-p]\naddress = h:1\ntls = yes\ncert_file = /c.pem\n"),
            "voxbridge.conf: [provider-p] key_file: missing: a client certificate needs both "
            "cert_file and key_file");
  EXPECT_EQ(error_of("[provider-p]\naddress = h:1\ncert_file = /c.pem\nkey_file = /k.pem\n"),
            "voxbridge.conf: [provider-p] tls: cert_file and key_file need tls = yes");
  EXPECT_EQ(error_of("[webhook]\nurl = ftp://x\n"),
            "voxbridge.conf:2: [webhook] url: 'ftp://x': must start with http:// or https://");
  EXPECT_EQ(error_of("[webhook]\nurl = http://hooks.example.com:80800/vb\n"),
            "voxbridge.conf:2: [webhook] url: 'http://hooks.example.com:80800/vb': bad port "
            "'80800'");
  EXPECT_EQ(error_of("[webhook]\nurl = https://user:pw@hooks.example.com/vb\n"),
            "voxbridge.conf:2: [webhook] url: 'https://user:pw@hooks.example.com/vb': credentials "
            "in the URL are not supported");
  EXPECT_EQ(error_of("[openai-o]\nbase_url = http://[::1]:11434/v1?x=1\n"),
            "voxbridge.conf:2: [openai-o] base_url: 'http://[::1]:11434/v1?x=1': a query string "
            "is not supported here");
  EXPECT_EQ(error_of("[openai-o]\nbase_url = http//localhost:11434/v1\n"),
            "voxbridge.conf:2: [openai-o] base_url: 'http//localhost:11434/v1': must start with "
            "http:// or https://");
  EXPECT_EQ(error_of("[webhook]\nevents = call_started, bogus\n"),
            "voxbridge.conf:2: [webhook] events: 'bogus' is not one of call_started, call_ended, "
            "action");
}

TEST(Config, AriOverHttpsTakesACaFile) {
  const Config c = parse_config(
      "[control]\nmode = ari\n[ari]\nurl = https://pbx.example.com:8089\nusername = vb\n"
      "password = x\nca_file = /etc/voxbridge/asterisk-ca.pem\n",
      "voxbridge.conf");
  EXPECT_EQ(c.control.mode, control::ControlConfig::Mode::ari);
  EXPECT_EQ(c.control.ari.url, "https://pbx.example.com:8089");
  EXPECT_EQ(c.control.ari.ca_file, "/etc/voxbridge/asterisk-ca.pem");
  EXPECT_TRUE(c.control.ari.verify_tls);
  // Plain http as before: no CA, verification (unused) on.
  const Config plain = parse_config(
      "[control]\nmode = ari\n[ari]\nurl = http://127.0.0.1:8088\nusername = vb\npassword = x\n",
      "voxbridge.conf");
  EXPECT_EQ(plain.control.ari.url, "http://127.0.0.1:8088");
  EXPECT_EQ(plain.control.ari.ca_file, "");
  EXPECT_TRUE(plain.control.ari.verify_tls);
  const Config unverified = parse_config(
      "[control]\nmode = ari\n[ari]\nurl = https://10.0.0.5:8089\nusername = vb\n"
      "password = x\nverify_tls = no\n",
      "voxbridge.conf");
  EXPECT_FALSE(unverified.control.ari.verify_tls);

  EXPECT_EQ(error_of("[ari]\nurl = wss://pbx:8089\n"),
            "voxbridge.conf:2: [ari] url: 'wss://pbx:8089': must start with http:// or https://");
  EXPECT_EQ(error_of("[ari]\nurl = http://[fe80::1:8088\n"),
            "voxbridge.conf:2: [ari] url: 'http://[fe80::1:8088': unclosed '[' in the host");
  EXPECT_EQ(error_of("[ari]\nverify_tls = maybe\n"),
            "voxbridge.conf:2: [ari] verify_tls: 'maybe' is not yes or no");
  EXPECT_EQ(error_of("[control]\nmode = ari\n[ari]\nurl = http://pbx:8088\nusername = vb\n"
                     "password = x\nca_file = /ca.pem\n"),
            "voxbridge.conf: [ari] url: ca_file and verify_tls need an https:// url");
}

}  // namespace
}  // namespace voxbridge::config

namespace voxbridge::config {
namespace {

TEST(Config, ASemicolonInsideAValueIsRefusedNotSilentlyCut) {
  // Finding 8: "secret = ab;cd" was read as "ab" without a word (an inline secret cut short).
  EXPECT_EQ(error_of("[ami]\nsecret = ab;cd\n"),
            "voxbridge.conf:2: [ami] a ';' inside a value starts a comment and would cut the "
            "value short: write \\; for a literal ';', or put a space before a comment");
  const Config c = parse_config(
      "[control]\nmode = ami\n[ami]\nusername = vb ; a comment\nsecret = ab\\;cd\n", "x.conf");
  EXPECT_EQ(c.control.ami.username, "vb");
  EXPECT_EQ(c.control.ami.secret, "ab;cd");
}

TEST(Config, ParsesTheGuardPolicy) {
  const Config d = default_config();
  EXPECT_EQ(d.control.allow.contexts, (std::vector<std::string>{"voxbridge-transfer"}));
  EXPECT_EQ(d.control.allow.extensions, (std::vector<std::string>{"100", "200"}));
  EXPECT_TRUE(d.control.allow.variables.empty());
  const Config c = parse_config(
      "[control]\nallow_variables = VB_RESULT, CRM_*\nmax_actions_per_call = 5\n"
      "max_originates_per_call = 0\nuuid_variable = MY_UUID\n",
      "x.conf");
  EXPECT_EQ(c.control.allow.variables, (std::vector<std::string>{"VB_RESULT", "CRM_*"}));
  EXPECT_EQ(c.control.allow.max_actions_per_call, 5u);
  EXPECT_EQ(c.control.allow.max_originates_per_call, 0u);
  EXPECT_EQ(c.control.allow.uuid_variable, "MY_UUID");
  EXPECT_EQ(error_of("[control]\nallow_variables = VB_TRANSFER\n"),
            "voxbridge.conf: [control] allow_variables: 'VB_TRANSFER' is reserved for "
            "voxbridge");
  EXPECT_EQ(error_of("[control]\ntransfer_context = a,b\n"),
            "voxbridge.conf:2: [control] transfer_context: 'a,b' is not a context name (A-Z a-z "
            "0-9 _ -)");
}

// The built-in receptionist is data (src/dialogue_rules/receptionist.conf), read before the
// file: the same menu, greeting and providers it always had.
TEST(Config, TheBuiltInReceptionistKeepsItsMenuGreetingAndProviders) {
  const Config c = default_config();
  const auto& r = c.rules.at("receptionist");
  EXPECT_EQ(r.name, "receptionist");
  EXPECT_EQ(r.fallback,
            "Sorry, I did not catch that. Say sales or press 1, support or press 2, or say "
            "goodbye.");
  EXPECT_EQ(r.no_input, "Are you still there? Say sales or press 1, support or press 2.");
  using A = dialogue_rules::Intent::Action;
  const std::vector<dialogue_rules::Intent> want = {
      {"sales",
       {"sales", "sale", "buy", "pricing"},
       "1",
       "Connecting you to sales.",
       A::transfer,
       "100",
       ""},
      {"support",
       {"support", "technical", "problem", "broken"},
       "2",
       "Connecting you to support.",
       A::transfer,
       "200",
       ""},
      {"time", {"time", "clock"}, "", "It is {time}. Anything else?", A::none, "", ""},
      {"goodbye",
       {"goodbye", "bye", "no thanks"},
       "#",
       "Thank you for calling. Goodbye.",
       A::hangup,
       "",
       ""},
  };
  EXPECT_EQ(r.intents, want);
  const auto* a = c.find_agent("receptionist");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, agent::AgentSpec::Type::pipeline);
  const auto& p = c.pipelines.at("receptionist");
  EXPECT_EQ(p.greeting,
            "Thank you for calling. Say sales or press 1, support or press 2, or say goodbye.");
  EXPECT_EQ(p.asr.address, kBuiltinAddress);
  EXPECT_EQ(p.tts.address, kBuiltinAddress);
  EXPECT_EQ(p.llm.metadata,
            (std::vector<std::pair<std::string, std::string>>{{"vb-rules", "receptionist"}}));
  EXPECT_EQ(p.phrase_hints, (std::vector<std::string>{"sales", "sale", "buy", "pricing", "support",
                                                      "technical", "problem", "broken", "time",
                                                      "clock", "goodbye", "bye", "no thanks"}));
  // Agents in the order they always had, OpenAI Realtime's and Gemini Live's built-in agents
  // after playback.
  ASSERT_EQ(c.agents.size(), 5u);
  EXPECT_EQ(c.agents[0].name, "echo");
  EXPECT_EQ(c.agents[1].name, "playback");
  EXPECT_EQ(c.agents[2].name, "realtime");
  EXPECT_EQ(c.agents[3].name, "gemini");
  EXPECT_EQ(c.agents[4].name, "receptionist");
}

TEST(Config, TheReceptionistsDataFileLoadsAsAConfigurationFile) {
  // What users copy to change the menu is exactly what is built in.
  const Config d = default_config();
  const Config c = load_config_file(VB_RECEPTIONIST_CONF);
  EXPECT_EQ(c.rules, d.rules);
  EXPECT_EQ(c.pipelines.at("receptionist").greeting, d.pipelines.at("receptionist").greeting);
  EXPECT_EQ(c.pipelines.at("receptionist").llm, d.pipelines.at("receptionist").llm);
  EXPECT_EQ(c.pipelines.at("receptionist").phrase_hints,
            d.pipelines.at("receptionist").phrase_hints);
}

TEST(Config, AFileAddsToTheBuiltInReceptionistOrReplacesItsRuleSet) {
  // An intent of the file joins the built-in set, even under a name the built-in set uses.
  const Config added = parse_config(
      "[intent-sales]\nrules = receptionist\nkeywords = shop\ndtmf = 5\nreply = The shop.\n",
      "t.conf");
  const auto& a = added.rules.at("receptionist").intents;
  ASSERT_EQ(a.size(), 5u);
  EXPECT_EQ(a[0].name, "sales");
  EXPECT_EQ(a[4].name, "sales");
  EXPECT_EQ(a[4].keywords, (std::vector<std::string>{"shop"}));
  // A [rules-receptionist] section replaces the set, intents and all.
  const Config replaced = parse_config(
      "[rules-receptionist]\nfallback = Pardon?\n"
      "[intent-operator]\nrules = receptionist\ndtmf = 0\nreply = One moment.\n",
      "t.conf");
  const auto& r = replaced.rules.at("receptionist");
  EXPECT_EQ(r.fallback, "Pardon?");
  EXPECT_EQ(r.no_input, "Are you still there?");
  ASSERT_EQ(r.intents.size(), 1u);
  EXPECT_EQ(r.intents[0].name, "operator");
  EXPECT_EQ(replaced.pipelines.at("receptionist").llm.metadata.at(0).second, "receptionist");
  // An [agent-receptionist] section starts from scratch, a pipeline agent without providers.
  EXPECT_EQ(error_of("[agent-receptionist]\ngreeting = Hi.\n"),
            "voxbridge.conf: [agent-receptionist] asr: missing: name a [provider-NAME] section");
}

TEST(CommandLine, CheckConfig) {
  const char* a[] = {"voxbridge", "--config", "x.conf", "--check-config"};
  const CommandLine cl = parse_command_line(4, a);
  EXPECT_TRUE(cl.check_config);
  EXPECT_EQ(cl.config_file, "x.conf");
  const char* b[] = {"voxbridge"};
  EXPECT_FALSE(parse_command_line(1, b).check_config);
  EXPECT_NE(usage().find("--check-config"), std::string::npos);
}

}  // namespace
}  // namespace voxbridge::config
