#include "voxbridge/metrics/metrics.hpp"

#include <charconv>
#include <cmath>

namespace voxbridge::metrics {

void Histogram::observe(std::chrono::nanoseconds d) noexcept {
  observe_seconds(std::chrono::duration<double>(d).count());
}

void Histogram::observe_seconds(double s) noexcept {
  if (!(s >= 0)) s = 0;  // negative or NaN: a clock oddity, counted as zero
  std::size_t i = 0;
  while (i < kBounds.size() && s > kBounds[i]) ++i;
  counts_[i].add();
  sum_us_.add(static_cast<std::uint64_t>(std::llround(s * 1e6)));
}

void Histogram::Snapshot::merge(const Histogram& h) noexcept {
  for (std::size_t i = 0; i < kBuckets; ++i) {
    const auto c = h.counts_[i].value();
    counts[i] += c;
    count += c;
  }
  sum_seconds += static_cast<double>(h.sum_us_.value()) / 1e6;
}

std::size_t Slots::slot(std::string_view name) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return i;
  }
  if (names_.size() + 1 >= kMax) {
    if (names_.size() < kMax) names_.emplace_back("other");
    return kMax - 1;
  }
  names_.emplace_back(name);
  return names_.size() - 1;
}

Slots& provider_slots() {
  static Slots slots;
  return slots;
}

std::vector<std::string> Slots::names() const {
  std::lock_guard lock(mu_);
  return names_;
}

void Writer::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (char c : help) {  // HELP escapes only backslash and newline
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void Writer::labels(std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
                    std::string_view extra_name, std::string_view extra_value) {
  if (labels.size() == 0 && extra_name.empty()) return;
  out_ += '{';
  bool first = true;
  auto one = [&](std::string_view k, std::string_view v) {
    if (!first) out_ += ',';
    first = false;
    out_ += k;
    out_ += "=\"";
    for (char c : v) {
      if (c == '\\') {
        out_ += "\\\\";
      } else if (c == '"') {
        out_ += "\\\"";
      } else if (c == '\n') {
        out_ += "\\n";
      } else {
        out_ += c;
      }
    }
    out_ += '"';
  };
  for (const auto& [k, v] : labels) one(k, v);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out_ += '}';
}

void Writer::number(double v) {
  if (std::isnan(v)) {
    out_ += "NaN";
  } else if (std::isinf(v)) {
    out_ += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
}

void Writer::sample(std::string_view name,
                    std::initializer_list<std::pair<std::string_view, std::string_view>> l,
                    double value) {
  out_ += name;
  labels(l);
  out_ += ' ';
  number(value);
  out_ += '\n';
}

void Writer::histogram(std::string_view name,
                       std::initializer_list<std::pair<std::string_view, std::string_view>> l,
                       const Histogram::Snapshot& h) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < Histogram::kBuckets; ++i) {
    cumulative += h.counts[i];
    out_ += name;
    out_ += "_bucket";
    if (i < Histogram::kBounds.size()) {
      char buf[32];
      const auto r = std::to_chars(buf, buf + sizeof buf, Histogram::kBounds[i]);
      labels(l, "le", std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    } else {
      labels(l, "le", "+Inf");
    }
    out_ += ' ';
    number(static_cast<double>(cumulative));
    out_ += '\n';
  }
  out_ += name;
  out_ += "_sum";
  labels(l);
  out_ += ' ';
  number(h.sum_seconds);
  out_ += '\n';
  out_ += name;
  out_ += "_count";
  labels(l);
  out_ += ' ';
  number(static_cast<double>(h.count));
  out_ += '\n';
}

}  // namespace voxbridge::metrics
