#include "core/id.hpp"

#include <sodium.h>

#include <array>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <cstdint>
#include <mutex>

namespace souq {
namespace {
constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";

struct State {
  std::mutex mutex;
  uint64_t last_ms = 0;
  std::array<uint8_t, 10> last_random{};
};

State& state() {
  static State s;
  return s;
}

// Random bytes from a per-thread buffer refilled 4 KiB at a time, so that an
// id costs one getrandom(2) per ~400 ids instead of one each.
void random_bytes(uint8_t* out, size_t n) {
  static const bool sodium_ready = sodium_init() >= 0;  // thread-safe once
  if (!sodium_ready) throw std::runtime_error("libsodium could not initialise");
  thread_local std::array<uint8_t, 4096> pool;
  thread_local size_t used = pool.size();
  if (used + n > pool.size()) {
    randombytes_buf(pool.data(), pool.size());
    used = 0;
  }
  std::memcpy(out, pool.data() + used, n);
  sodium_memzero(pool.data() + used, n);
  used += n;
}

std::string encode(std::string_view prefix, uint64_t ms, const std::array<uint8_t, 10>& random);

// Adds one to a big-endian 80-bit number; returns false on overflow.
bool increment(std::array<uint8_t, 10>& bytes) {
  for (int i = 9; i >= 0; --i)
    if (++bytes[i] != 0) return true;
  return false;
}
}  // namespace

std::string new_id(std::string_view prefix) {
  uint64_t ms = uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
  std::array<uint8_t, 10> random;
  random_bytes(random.data(), random.size());
  {
    auto& s = state();
    std::lock_guard lock(s.mutex);
    if (ms <= s.last_ms) {
      ms = s.last_ms;
      std::array<uint8_t, 10> next = s.last_random;
      if (increment(next)) random = next;
      else ms = ++s.last_ms;  // 2^80 ids in one millisecond: borrow the next one, keeping the fresh bytes
    }
    s.last_ms = ms;
    s.last_random = random;
  }
  return encode(prefix, ms, random);
}

std::string new_id_at(std::string_view prefix, int64_t unix_ms) {
  std::array<uint8_t, 10> random;
  random_bytes(random.data(), random.size());
  return encode(prefix, uint64_t(unix_ms), random);
}

namespace {
std::string encode(std::string_view prefix, uint64_t ms, const std::array<uint8_t, 10>& random) {
  // 128 bits: 48 of time, 80 of randomness, written as 26 base32 digits (130 bits, top 2 zero).
  std::array<uint8_t, 16> bits{};
  for (int i = 0; i < 6; ++i) bits[i] = uint8_t(ms >> (40 - 8 * i));
  for (int i = 0; i < 10; ++i) bits[6 + i] = random[i];
  std::string out(prefix);
  out += '_';
  for (int digit = 0; digit < 26; ++digit) {
    int bit = digit * 5 - 2;  // position of the digit's first bit in the 128-bit number
    int value = 0;
    for (int b = 0; b < 5; ++b, ++bit) {
      value <<= 1;
      if (bit >= 0) value |= (bits[bit / 8] >> (7 - bit % 8)) & 1;
    }
    out += kAlphabet[value];
  }
  return out;
}
}  // namespace

bool is_id(std::string_view text, std::string_view prefix) {
  auto underscore = text.rfind('_');
  if (underscore == std::string_view::npos || underscore == 0) return false;
  if (!prefix.empty() && text.substr(0, underscore) != prefix) return false;
  auto body = text.substr(underscore + 1);
  if (body.size() != 26 || body[0] > '7') return false;
  for (char c : body)
    if (std::string_view(kAlphabet).find(c) == std::string_view::npos) return false;
  return true;
}

}  // namespace souq
