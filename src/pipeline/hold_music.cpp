#include "voxbridge/pipeline/hold_music.hpp"

#include <utility>

namespace voxbridge::pipeline {

HoldMusic::HoldMusic(const agent::CallInfo& info, agent::CallControl::Poster post)
    : info_(info), post_(std::move(post)) {}

HoldMusic::~HoldMusic() {
  stop();
}

void HoldMusic::start(const std::string& moh_class,
                      std::function<void(const std::string&)> refused) {
  if (on_) return;
  if (!info_.actions) {
    if (refused) refused("no Asterisk control path");
    return;
  }
  on_ = true;
  const unsigned generation = ++generation_;
  agent::ActionRequest r;
  r.kind = agent::ActionRequest::Kind::start_moh;
  r.name = moh_class;
  info_.actions->run(r, [post = post_, w = std::weak_ptr<int>(alive_), this, generation,
                         refused = std::move(refused)](std::string error) {
    if (error.empty()) return;
    post([w, this, generation, refused, error = std::move(error)] {
      // Stopped (or started again) meanwhile: that refusal is of no use any more.
      if (!w.lock() || !on_ || generation != generation_) return;
      on_ = false;
      if (refused) refused(error);
    });
  });
}

void HoldMusic::stop() {
  if (!on_) return;
  on_ = false;
  ++generation_;
  if (!info_.actions) return;
  agent::ActionRequest r;
  r.kind = agent::ActionRequest::Kind::stop_moh;
  info_.actions->run(r, [](std::string) {});
}

}  // namespace voxbridge::pipeline
