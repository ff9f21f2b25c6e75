#include "support/alloc_counter.hpp"

#include <cstdlib>
#include <new>

namespace {
thread_local bool t_counting = false;
thread_local std::size_t t_allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (t_counting) ++t_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace voxbridge::testing {

AllocationCounter::AllocationCounter() {
  t_allocations = 0;
  t_counting = true;
}

AllocationCounter::~AllocationCounter() {
  if (counting_) t_counting = false;
}

std::size_t AllocationCounter::stop() {
  counting_ = false;
  t_counting = false;
  return t_allocations;
}

std::size_t AllocationCounter::count() const {
  return t_allocations;
}

}  // namespace voxbridge::testing
