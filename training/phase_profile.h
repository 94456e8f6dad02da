// Where an update's time goes: wall time and ATen operator counts of the trainer's phases, for
// `skillgrid bench train --phases`. On a GPU each phase boundary synchronises the device, so the
// times are the device's work plus the host's dispatch, attributed to the phase that issued it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include <c10/core/Device.h>

namespace skillgrid::training {

/// Accumulates, per named phase, seconds and the ATen operators dispatched (any thread) while
/// the phase was open; operators that others call count too (aten::relu and its
/// aten::clamp_min). At most one PhaseProfile records at a time (it installs a process-wide
/// operator observer for its lifetime); phases do not nest.
class PhaseProfile {
 public:
  /// Starts counting operators; `device` is synchronised at phase boundaries when it is a GPU.
  explicit PhaseProfile(c10::Device device);
  ~PhaseProfile();
  PhaseProfile(const PhaseProfile&) = delete;
  PhaseProfile& operator=(const PhaseProfile&) = delete;

  /// Opens `phase` (a string literal) until the returned scope ends; a null profile gives a
  /// scope that does nothing, so callers need not test for one.
  class Scope {
   public:
    Scope(PhaseProfile* profile, const char* phase);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    PhaseProfile* profile_;
    std::chrono::steady_clock::time_point start_;
  };

  /// Forgets what was recorded so far (after warm-up updates).
  void Reset();
  /// A table of the phases (seconds and operators per update, microseconds per operator) over
  /// `updates` updates, then the `top` most frequent operators of each phase.
  std::string Report(int64_t updates, int top = 8) const;
  /// Counts one operator under the open phase (the operator observer calls this).
  void CountOperator(const char* name);

 private:
  struct Totals {
    double seconds = 0.0;
    int64_t ops = 0;
    std::map<std::string, int64_t> ops_by_name;
  };
  void Synchronize() const;

  c10::Device device_;
  uint64_t callback_ = 0;
  mutable std::mutex mutex_;
  std::map<std::string, Totals> phases_;
  std::string open_;  // empty between phases: operators then count under "(between phases)"
};

}  // namespace skillgrid::training
