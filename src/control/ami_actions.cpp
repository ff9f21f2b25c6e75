#include "voxbridge/control/ami_actions.hpp"

namespace voxbridge::control::ami_actions {

Action redirect(const std::string& channel, const std::string& context, const std::string& exten,
                int priority) {
  return {"Redirect",
          {{"Channel", channel},
           {"Context", context},
           {"Exten", exten},
           {"Priority", std::to_string(priority)}}};
}

Action blind_transfer(const std::string& channel, const std::string& context,
                      const std::string& exten) {
  return {"BlindTransfer", {{"Channel", channel}, {"Context", context}, {"Exten", exten}}};
}

Action hangup(const std::string& channel, int cause) {
  return {"Hangup", {{"Channel", channel}, {"Cause", std::to_string(cause)}}};
}

Action play_dtmf(const std::string& channel, char digit, int duration_ms, bool receive) {
  Action a{"PlayDTMF", {{"Channel", channel}, {"Digit", std::string(1, digit)}}};
  if (duration_ms > 0) a.fields.emplace_back("Duration", std::to_string(duration_ms));
  a.fields.emplace_back("Receive", receive ? "true" : "false");
  return a;
}

Action setvar(const std::string& channel, const std::string& name, const std::string& value) {
  return {"Setvar", {{"Channel", channel}, {"Variable", name}, {"Value", value}}};
}

Action getvar(const std::string& channel, const std::string& name) {
  return {"Getvar", {{"Channel", channel}, {"Variable", name}}};
}

Action originate(const std::string& channel, const std::string& context, const std::string& exten,
                 long timeout_ms, const std::string& caller_id,
                 const std::vector<std::pair<std::string, std::string>>& variables) {
  Action a{"Originate",
           {{"Channel", channel},
            {"Context", context},
            {"Exten", exten},
            {"Priority", "1"},
            {"Async", "true"},
            {"Timeout", std::to_string(timeout_ms)}}};
  if (!caller_id.empty()) a.fields.emplace_back("CallerID", caller_id);
  for (const auto& [k, v] : variables) a.fields.emplace_back("Variable", k + "=" + v);
  return a;
}

}  // namespace voxbridge::control::ami_actions
