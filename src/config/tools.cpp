// [tool-NAME]: a business tool (an HTTP(S) endpoint) the models of the named agents may call,
// one table of keys; what the section says of other sections (agents, the URL's host) is checked
// once the whole file is read (finish_tool).
#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <fstream>
#include <sstream>

#include "parse.hpp"
#include "voxbridge/guard/guard.hpp"
#include "voxbridge/net/url.hpp"

namespace voxbridge::config::detail {
namespace {

using W = const Where&;
using V = const std::string&;
using tools::ToolOptions;

/// The parameters' JSON Schema: a JSON object with "type":"object" (what the models' function
/// calling accepts); stored compact.
std::string parse_schema(W w, const std::string& text) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(text, ec);
  if (ec) w.fail("not JSON: " + ec.message());
  if (!v.is_object()) w.fail("the parameters' schema must be a JSON object");
  const auto* type = v.as_object().if_contains("type");
  if (type == nullptr || !type->is_string() || type->as_string() != "object") {
    w.fail("the parameters' schema must have \"type\":\"object\"");
  }
  return boost::json::serialize(v);
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// `header = Name: value`. The value may hold secrets (${NAME}, ${file:PATH}): it is never put
/// in an error message.
void parse_header(ToolOptions& o, W w, V v) {
  const auto colon = v.find(':');
  if (colon == std::string::npos) w.fail("expected 'Name: value'");
  const std::string name = trim(v.substr(0, colon));
  if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
    w.fail("'" + name + "' is not a header name");
  }
  const std::string l = lower(name);
  for (const char* own : {"host", "content-length", "transfer-encoding", "connection",
                          "content-type", "user-agent", "x-voxbridge-call-id"}) {
    if (l == own) w.fail("voxbridge sets " + name + " itself");
  }
  const std::string value = expand_env(w, trim(v.substr(colon + 1)));
  if (std::any_of(value.begin(), value.end(), [](char c) {
        return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f;
      })) {
    w.fail("the value of " + name + " holds control characters (CR, LF...)");
  }
  o.headers.emplace_back(name, value);
}

/// The URL with every {NAME} placeholder replaced by "x": what must parse as an http(s) URL.
std::string without_placeholders(W w, V v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '}') w.fail("'}' without '{'");
    if (v[i] != '{') {
      out += v[i];
      continue;
    }
    const auto e = v.find('}', i);
    if (e == std::string::npos) w.fail("'{' without '}'");
    const std::string name = v.substr(i + 1, e - i - 1);
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        })) {
      w.fail("'{" + name + "}' is not a placeholder ({NAME}: letters, digits, _ and -)");
    }
    out += 'x';
    i = e;
  }
  return out;
}

const Key<ToolOptions> kTool[] = {
    {"description", [](ToolOptions& o, W, V v) { o.description = v; }},
    {"parameters", [](ToolOptions& o, W w, V v) { o.parameters_json = parse_schema(w, v); }},
    {"parameters_file",
     [](ToolOptions& o, W w, V v) {
       std::ifstream f(v);
       if (!f) w.fail("cannot read " + v);
       std::stringstream ss;
       ss << f.rdbuf();
       o.parameters_json = parse_schema(w, ss.str());
     }},
    {"url",
     [](ToolOptions& o, W w, V v) {
       const std::string plain = without_placeholders(w, v);
       if (plain.rfind("http://", 0) != 0 && plain.rfind("https://", 0) != 0) {
         w.fail("'" + v + "' is not an http:// or https:// URL");
       }
       check_http_url(w, plain);
       o.url = v;
     }},
    {"method",
     [](ToolOptions& o, W w, V v) {
       std::string m = v;
       std::transform(m.begin(), m.end(), m.begin(),
                      [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
       if (m != "GET" && m != "POST") w.fail("'" + v + "' is not GET or POST");
       o.method = m;
     }},
    {"header", parse_header},
    {"timeout_ms", [](ToolOptions& o, W w, V v) { o.timeout = parse_ms(w, v, 10, 120000); }},
    {"max_response_bytes",
     [](ToolOptions& o, W w, V v) { o.max_response_bytes = parse_size(w, v, 1, 1 << 20); }},
    {"allowed_host", [](ToolOptions& o, W, V v) { o.allowed_host = lower(v); }},
    {"agents", [](ToolOptions& o, W, V v) { o.agents = parse_list(v); }},
    {"max_per_call", [](ToolOptions& o, W w, V v) { o.max_per_call = parse_size(w, v, 1, 1000); }},
    {"max_concurrent",
     [](ToolOptions& o, W w, V v) { o.max_concurrent = parse_size(w, v, 1, 10000); }},
    {"max_per_minute",
     [](ToolOptions& o, W w, V v) { o.max_per_minute = parse_size(w, v, 1, 100000); }},
    {"ca_file", [](ToolOptions& o, W, V v) { o.ca_file = v; }},
    {"filler", [](ToolOptions& o, W, V v) { o.filler = v; }},
    {"filler_after_ms",
     [](ToolOptions& o, W w, V v) { o.filler_after = parse_ms(w, v, 0, 60000); }},
    {"filler_moh",
     [](ToolOptions& o, W w, V v) {
       if (const auto bad = guard::check_moh_class(v); !bad.empty()) w.fail(bad);
       o.filler_moh = v;
     }},
};

}  // namespace

std::string check_tool_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
      })) {
    return "a tool's name is 1 to 64 letters, digits, _ and -";
  }
  for (const char* action : {"transfer", "hang_up", "send_dtmf", "set_variable"}) {
    if (name == action) return "'" + name + "' is a built-in action: name the tool otherwise";
  }
  return {};
}

void set_tool(ToolOptions& o, const Where& w, const std::string& v) {
  if (!set_key(kTool, o, w, v)) w.fail("unknown option");
}

void finish_tool(ToolOptions& o, const Config& c, const std::string& source) {
  const std::string section = "tool-" + o.name;
  auto fail = [&](const std::string& key, const std::string& why) {
    Where{source, 0, section, key}.fail(why);
  };
  if (o.url.empty()) fail("url", "missing: the tool's http:// or https:// URL");
  if (o.description.empty()) fail("description", "missing: tell the model what the tool does");
  if (o.agents.empty()) fail("agents", "missing: the agents that may offer the tool");
  for (const auto& a : o.agents) {
    const auto* spec = c.find_agent(a);
    if (spec == nullptr) fail("agents", "no agent named '" + a + "'");
    if (spec->type != agent::AgentSpec::Type::speech &&
        spec->type != agent::AgentSpec::Type::pipeline) {
      fail("agents", "'" + a + "' has no model to offer tools to (only s2s and pipeline agents)");
    }
  }
  // The host as written: with a placeholder in it, only allowed_host says where requests go.
  const auto scheme_end = o.url.find("://") + 3;
  const auto host_end = o.url.find_first_of("/?#", scheme_end);
  const std::string authority = o.url.substr(scheme_end, host_end - scheme_end);
  const bool https = o.url.rfind("https://", 0) == 0;
  if (authority.find('{') != std::string::npos) {
    if (o.allowed_host.empty()) {
      fail("allowed_host", "missing: the url's host has a placeholder; say which host it must be");
    }
  } else {
    const std::string host = lower(net::parse_http_url(o.url.substr(0, host_end)).host);
    if (!o.allowed_host.empty() && o.allowed_host != host) {
      fail("allowed_host", "'" + o.allowed_host + "' is not the url's host '" + host +
                               "': no request could be made");
    }
  }
  if (!https && !o.ca_file.empty()) fail("ca_file", "needs an https:// url");
}

}  // namespace voxbridge::config::detail
