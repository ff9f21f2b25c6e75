// Counts the global operator new calls of one thread, for the tests that assert a path
// allocates nothing. A test using it links support/alloc_counter.cpp, which replaces the
// global operator new and delete (plain malloc/free, counted while a counter is alive).
#pragma once

#include <cstddef>

namespace voxbridge::testing {

/// Counts this thread's allocations from construction until stop() or destruction.
class AllocationCounter {
 public:
  AllocationCounter();
  ~AllocationCounter();
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;

  /// Stops counting; returns the allocations counted.
  std::size_t stop();
  std::size_t count() const;

 private:
  bool counting_ = true;
};

}  // namespace voxbridge::testing
