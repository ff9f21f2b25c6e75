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
//
// Contract v1.1: a ClearPlayback is answered with CallEvent.playback_cleared (the last mark
// played and the ms of agent audio played since, to the 20 ms frame) before the mark_played
// events of the dropped marks; usage the agent reports (cumulative) is counted in the agent
// metrics as it comes and written once to the call's events (`usage`) at its end. With
// leg_codec a G.711 leg's own codec goes both ways (AgentAudio): the stream then opens at the
// caller's first audio, or 100 ms after the start without it (DTMF before is held for it). The
// echo gate (AgentAudio) keeps the agent's own voice, coming back from the line, away from it.
//
// Contract v1.2, business tools: the call's tools (CallInfo::tools, the [tool-NAME] sections
// naming the agent) go out in AgentConfig.tools; each AgentResponse.tool_call runs through that
// handle (which refuses a tool not offered, over a cap, with bad arguments) and its result goes
// back as CallEvent.tool_result, exactly once (at once, refused, on a call without tools); at
// the call's end the results still owed are dropped and their requests cancelled. While results
// are owed, once the tool's filler_after has passed with nothing queued to play, the caller
// hears the tool's filler phrase (pre-synthesized, CallTools::Filler::audio), fed 60 ms ahead of
// playout, so that it stops within 60 ms of the last result (or of the agent's next audio)
// without dropping anything else; it plays at most once per wait.
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
