#include "voxbridge/server/routing.hpp"

#include <algorithm>

#include "voxbridge/guard/guard.hpp"
#include "voxbridge/pipeline/pipeline.hpp"
#include "voxbridge/pipeline/speech_agent.hpp"

namespace voxbridge::server {

namespace {

/// True if every condition of the route holds for the call.
bool route_matches(const config::RouteConfig& r, const agent::CallInfo& info) {
  if (!r.listeners.empty() &&
      std::find(r.listeners.begin(), r.listeners.end(), info.listener) == r.listeners.end()) {
    return false;
  }
  if (!r.caller.empty() && !guard::match_dial_pattern(r.caller, info.caller_number)) {
    return false;
  }
  if (!r.called.empty() && !guard::match_dial_pattern(r.called, info.called_number)) {
    return false;
  }
  for (const auto& [name, pattern] : r.variables) {
    auto it = info.variables.find(name);
    if (it == info.variables.end() || !guard::match_dial_pattern(pattern, it->second)) {
      return false;
    }
  }
  return true;
}

}  // namespace

MakeAgent agent_factory(const config::Config& cfg, const agent::AgentSpec& spec,
                        const std::shared_ptr<providers::ProviderClients>& clients,
                        const config::RouteConfig* route) {
  const auto& g = cfg.general;
  if (spec.type == agent::AgentSpec::Type::speech) {
    auto factory = std::make_shared<pipeline::SpeechAgentFactory>(
        cfg.speech_agents.at(spec.name), g.internal_rate_hz, g.resampler_quality, clients);
    return [factory] { return factory->create(); };
  }
  if (spec.type == agent::AgentSpec::Type::pipeline) {
    pipeline::PipelineSpec ps = cfg.pipelines.at(spec.name);
    if (route != nullptr && route->language) ps.language = *route->language;
    if (route != nullptr && route->greeting) {
      ps.greeting = *route->greeting;
      ps.greeting_file.clear();
    }
    if (route != nullptr) {
      ps.dtmf = route->dtmf.value_or(ps.dtmf);
      ps.dtmf_terminator = route->dtmf_terminator.value_or(ps.dtmf_terminator);
      ps.dtmf_timeout = route->dtmf_timeout.value_or(ps.dtmf_timeout);
      ps.dtmf_max_digits = route->dtmf_max_digits.value_or(ps.dtmf_max_digits);
    }
    auto factory = std::make_shared<pipeline::PipelineFactory>(std::move(ps), g.internal_rate_hz,
                                                               g.resampler_quality, clients);
    return [factory] { return factory->create(); };
  }
  auto factory =
      std::make_shared<agent::AgentFactory>(spec, g.internal_rate_hz, g.resampler_quality);
  return [factory] { return factory->create(); };
}

std::vector<std::string> agents_in_use(const config::Config& cfg) {
  std::vector<std::string> out;
  auto add = [&out](const std::string& a) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  };
  for (const auto& l : cfg.listeners) add(l.agent);
  for (const auto& r : cfg.routes) add(r.agent);
  return out;
}

bool uses_builtin_providers(const config::Config& cfg) {
  for (const auto& a : agents_in_use(cfg)) {
    const auto it = cfg.pipelines.find(a);
    if (it == cfg.pipelines.end()) continue;
    const auto& p = it->second;
    for (const auto* t : {&p.asr, &p.llm, &p.tts}) {
      if (t->address == config::kBuiltinAddress) return true;
    }
  }
  return false;
}

Routing::Routing(const config::Config& cfg,
                 const std::shared_ptr<providers::ProviderClients>& clients)
    : routes_(cfg.routes) {
  for (const auto& r : cfg.routes) {
    agents_.push_back(agent_factory(cfg, *cfg.find_agent(r.agent), clients, &r));
  }
}

RouteChoice Routing::route(http_api::Registrations& registrations, bool require_registration,
                           agent::CallInfo& info) const {
  RouteChoice p;
  auto meta = registrations.take(info.uuid);
  if (meta) {
    // Pre-registered facts: well-known keys fill the call's facts, the rest are variables.
    for (auto& [k, v] : *meta) {
      if (k == "caller_number") {
        info.caller_number = v;
      } else if (k == "caller_name") {
        info.caller_name = v;
      } else if (k == "called_number") {
        info.called_number = v;
      } else {
        info.variables[k] = v;
      }
    }
  } else if (require_registration) {
    p.refuse = "UUID not pre-registered (POST /v1/calls/" + info.uuid + " before AudioSocket)";
    return p;
  }
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const auto& r = routes_[i];
    if (!route_matches(r, info)) continue;
    p.make_agent = agents_[i];
    p.agent_name = r.agent;
    p.route = r.name;
    p.record = r.record;
    break;
  }
  return p;
}

}  // namespace voxbridge::server
