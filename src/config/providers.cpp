// [provider-NAME] (where a gRPC provider is) and [openai-NAME] (an OpenAI-compatible model for
// the built-in dialogue): their options, one table each.
#include <cstdlib>

#include "parse.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using llm_openai::OpenAiOptions;
using providers::ProviderTarget;

const Key<ProviderTarget> kProvider[] = {
    {"address",
     [](ProviderTarget& p, W w, V v) {
       if (v.find(':') == std::string::npos) w.fail("'" + v + "' is not HOST:PORT");
       p.address = v;
     }},
    {"tls", [](ProviderTarget& p, W w, V v) { p.tls = parse_bool(w, v); }},
    {"ca_file", [](ProviderTarget& p, W, V v) { p.ca_file = v; }},
    {"cert_file", [](ProviderTarget& p, W, V v) { p.cert_file = v; }},
    {"key_file", [](ProviderTarget& p, W, V v) { p.key_file = v; }},
    {"deadline_ms",
     [](ProviderTarget& p, W w, V v) { p.deadline = parse_ms(w, v, 0, 24 * 3600 * 1000LL); }},
    {"header",
     [](ProviderTarget& p, W w, V v) {
       const auto colon = v.find(':');
       if (colon == std::string::npos || colon == 0) w.fail("expected 'name: value'");
       p.metadata.emplace_back(lower(trim(v.substr(0, colon))),
                               expand_env(w, trim(v.substr(colon + 1))));
     }},
};

const Key<OpenAiOptions> kOpenAi[] = {
    {"base_url",
     [](OpenAiOptions& o, W w, V v) {
       if (check_http_url(w, v).find('?') != std::string::npos) {
         w.fail("'" + v + "': a query string is not supported here");
       }
       o.base_url = v;
     }},
    {"model", [](OpenAiOptions& o, W, V v) { o.model = v; }},
    {"api_key", [](OpenAiOptions& o, W w, V v) { o.api_key = expand_env(w, v); }},
    {"system_prompt", [](OpenAiOptions& o, W, V v) { o.system_prompt = v; }},
    {"temperature",
     [](OpenAiOptions& o, W w, V v) {
       char* end = nullptr;
       const double t = std::strtod(v.c_str(), &end);
       if (end == v.c_str() || *end != '\0' || t < 0 || t > 2) {
         w.fail("'" + v + "' is not 0 to 2");
       }
       o.temperature = t;
     }},
    {"ca_file", [](OpenAiOptions& o, W, V v) { o.ca_file = v; }},
    {"connect_timeout_ms",
     [](OpenAiOptions& o, W w, V v) { o.connect_timeout = parse_ms(w, v, 100, 60000); }},
    {"stall_timeout_ms",
     [](OpenAiOptions& o, W w, V v) { o.stall_timeout = parse_ms(w, v, 100, 600000); }},
};

}  // namespace

void set_provider(providers::ProviderTarget& p, const Where& w, const std::string& v) {
  if (!set_key(kProvider, p, w, v)) w.fail("unknown option");
}

void set_openai(llm_openai::OpenAiOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kOpenAi, o, w, v)) {
    w.fail(
        "unknown option (expected base_url, model, api_key, system_prompt, temperature, ca_file, "
        "connect_timeout_ms or stall_timeout_ms)");
  }
}

}  // namespace voxbridge::config::detail
