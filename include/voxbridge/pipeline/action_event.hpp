// The transcript event of an action a provider asked for (common::v1::Action), for the
// pipeline and the speech-to-speech agent alike. Pure function, any thread; the action's text
// comes from a model and stays data (events:: escapes it).
#pragma once

#include <string_view>

#include "voxbridge/common/v1/common.pb.h"
#include "voxbridge/events/call_event.hpp"

namespace voxbridge::pipeline {

/// `a` as an `action` event: its kind and parameters as members, then "ok" (`error` empty),
/// "error" (otherwise) and "how" (if not empty).
events::Event action_event(const common::v1::Action& a, std::string_view error,
                           std::string_view how = {});

}  // namespace voxbridge::pipeline
