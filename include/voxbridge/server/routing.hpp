// Which agent a call gets: the agent factories of a configuration (a listener's agent, each
// route's), and the routing of one call (pre-registration, then the routes in order).
//
// Built on the thread that loads or reloads the configuration; a Routing is immutable once
// built and shared by every listener's calls, so route() runs on any io thread at once.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/config/config.hpp"
#include "voxbridge/http_api/http_api.hpp"
#include "voxbridge/providers/clients.hpp"

namespace voxbridge::server {

using MakeAgent = std::function<std::unique_ptr<agent::Agent>()>;

/// A factory for `spec`'s agents on `clients`; `route` (may be null) adjusts a pipeline's
/// language, greeting and DTMF settings.
MakeAgent agent_factory(const config::Config& cfg, const agent::AgentSpec& spec,
                        const std::shared_ptr<providers::ProviderClients>& clients,
                        const config::RouteConfig* route = nullptr);

/// The agents the calls of `cfg` may reach: each listener's and each route's, once each.
std::vector<std::string> agents_in_use(const config::Config& cfg);

/// True if an agent in use talks to the built-in providers (address `builtin`): the server
/// then serves them in process.
bool uses_builtin_providers(const config::Config& cfg);

/// What routing chose for one call.
struct RouteChoice {
  std::string refuse;          ///< non-empty: the call is refused with this reason
  MakeAgent make_agent;        ///< set: the matching route's agent
  std::string agent_name;      ///< with make_agent
  std::string route;           ///< the matching route's name ("" = none)
  std::optional<bool> record;  ///< the route's recording choice, if it makes one
};

/// The routes of one configuration, with their agent factories.
class Routing {
 public:
  Routing(const config::Config& cfg, const std::shared_ptr<providers::ProviderClients>& clients);
  /// Routes one call: a pre-registration's facts (taken from `registrations`) fill `info`, or,
  /// with `require_registration`, an unregistered call is refused; then the first route whose
  /// conditions all hold picks the agent. Any thread.
  RouteChoice route(http_api::Registrations& registrations, bool require_registration,
                    agent::CallInfo& info) const;

 private:
  std::vector<config::RouteConfig> routes_;
  std::vector<MakeAgent> agents_;  // one per route
};

}  // namespace voxbridge::server
