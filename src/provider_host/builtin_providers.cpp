#include "voxbridge/provider_host/builtin_providers.hpp"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <spdlog/spdlog.h>

#include <stdlib.h>  // mkdtemp

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace voxbridge::provider_host {

namespace {
/// A fresh directory only this user can enter (mkdtemp makes it 0700).
std::string make_private_dir() {
  std::string base = "/tmp";
  // A Unix socket path holds at most 107 bytes (sockaddr_un.sun_path).
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && t[0] == '/' && std::strlen(t) < 64) {
    base = t;
  }
  std::string dir = base + "/voxbridge-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    throw std::runtime_error("cannot create a private directory in " + base + " for the built-in " +
                             "providers' socket: " + std::strerror(errno));
  }
  return dir;
}
}  // namespace

BuiltinProviders::BuiltinProviders(BuiltinOptions o) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  if (o.tts_backend) {
    tts_bridge_ = std::make_unique<SynthesizerBridge>(std::move(o.tts_backend), o.tts_target);
    b.RegisterService(tts_bridge_.get());
  } else if (o.tts) {
    flite_ = std::make_unique<tts_flite::FliteEngine>(o.tts_cache_bytes);
    tts_ = std::make_unique<tts_flite::FliteSynthesizer>(*flite_);
    b.RegisterService(tts_.get());
  }
  if (o.asr_backend) {
    asr_bridge_ = std::make_unique<RecognizerBridge>(std::move(o.asr_backend), o.asr_target);
    b.RegisterService(asr_bridge_.get());
  } else if (o.asr) {
    decoders_ = std::make_unique<asr_sphinx::DecoderPool>(o.sphinx);
    asr_ = std::make_unique<asr_sphinx::SphinxRecognizer>(*decoders_, o.sphinx);
    b.RegisterService(asr_.get());
  }
  if (o.llm) {
    llm_ = std::make_unique<DialogueRouter>(std::move(o.rules), std::move(o.openai));
    b.RegisterService(llm_.get());
  }
  if (o.agent_backend) {
    agent_ = std::make_unique<AgentBridge>(std::move(o.agent_backend), o.agent_target);
    b.RegisterService(agent_.get());
  }
  int port = 0;  // last, so that nothing else can throw once the directory exists
  if (o.listen.empty()) {
    private_dir_ = make_private_dir();
    o.listen = "unix:" + private_dir_ + "/providers.sock";
  }
  b.AddListeningPort(o.listen, grpc::InsecureServerCredentials(), &port);
  server_ = b.BuildAndStart();
  if (!server_ || port == 0) {
    std::error_code ec;
    if (!private_dir_.empty()) std::filesystem::remove_all(private_dir_, ec);
    throw std::runtime_error("cannot serve providers on " + o.listen);
  }
  if (!private_dir_.empty()) {
    address_ = o.listen;
  } else {
    const auto colon = o.listen.rfind(':');
    address_ = o.listen.substr(0, colon) + ":" + std::to_string(port);
  }
}

BuiltinProviders::~BuiltinProviders() {
  shutdown();
  if (!private_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(private_dir_, ec);
  }
}

grpc::Status DialogueRouter::Turn(grpc::ServerContext* ctx, const llm::v1::TurnRequest* req,
                                  grpc::ServerWriter<llm::v1::TurnResponse>* writer) {
  const auto md = ctx->client_metadata().find("vb-openai");
  if (md == ctx->client_metadata().end()) return rules_.Turn(ctx, req, writer);
  const std::string name(md->second.data(), md->second.size());
  const auto it = openai_.find(name);
  if (it == openai_.end()) return {grpc::StatusCode::NOT_FOUND, "no [openai-" + name + "]"};
  llm::v1::TurnResponse r;
  bool writable = true;
  llm_openai::TurnSink sink;
  sink.text = [&](const std::string& t) {
    r.Clear();
    r.set_text_delta(t);
    writable = writable && writer->Write(r);
  };
  sink.action = [&](const common::v1::Action& a) {
    r.Clear();
    *r.mutable_action() = a;
    writable = writable && writer->Write(r);
  };
  sink.tool_call = [&](const common::v1::ToolCall& c) {
    r.Clear();
    *r.mutable_tool_call() = c;
    writable = writable && writer->Write(r);
  };
  sink.cancelled = [&] { return !writable || ctx->IsCancelled(); };
  const auto err = llm_openai::run_turn(it->second, *req, sink);
  if (err.code != 0) return {static_cast<grpc::StatusCode>(err.code), err.message};
  r.Clear();
  r.mutable_end_of_turn();
  writer->Write(r);
  return grpc::Status::OK;
}

void BuiltinProviders::wait() {
  server_->Wait();
}

void BuiltinProviders::shutdown() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void exit_after_clean_stop(int code) {
  spdlog::shutdown();
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
#if defined(__SANITIZE_ADDRESS__)
  __lsan_do_leak_check();  // reports and exits non-zero on a leak
#endif
  std::_Exit(code);
}

}  // namespace voxbridge::provider_host
