// The speech-to-speech mode: one voxbridge.agent.v1.Agent/Converse stream per call carries the
// caller's audio to an agent (OpenAI Realtime style) and its audio back. The agent decides when
// to speak and when it was interrupted (it sends ClearPlayback); voxbridge resamples both ways,
// paces the agent's audio at real time under the playout watermarks, reports marks once the
// audio before them has been played, forwards DTMF, and carries out actions: hangup after the
// queued audio; a transfer once the audio queued before it has played; the others at once. They
// go through the ActionRunner (AMI/ARI when configured; without a control path an allowed
// transfer is noted for the dialplan and the call hangs up: s2s agents have no
// transfer_fallback). The agent hears each result as CallEvent.action_result; three refused or
// failed transfers end the call with the fallback prompt.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "voxbridge/agent/agent.hpp"
#include "voxbridge/pipeline/spec.hpp"
#include "voxbridge/providers/clients.hpp"
#include "voxbridge/providers/target.hpp"

namespace voxbridge::pipeline {

class SpeechAgentFactory {
 public:
  SpeechAgentFactory(SpeechAgentSpec spec, int internal_rate_hz, int resampler_quality,
                     std::shared_ptr<providers::ProviderClients> clients);
  std::unique_ptr<agent::Agent> create() const;

 private:
  std::shared_ptr<const SpeechAgentSpec> spec_;
  int rate_hz_;
  int quality_;
  std::shared_ptr<providers::ProviderClients> clients_;
};

}  // namespace voxbridge::pipeline
